import Machine

/// The x86-64 paging-entry format (SEMANTICS §1.3; Intel SDM Vol. 3A §4.5, Tables 4-15 to 4-20),
/// used for guest tables and, in the host's paging mode, for AMD's nested tables (§3.1).
///
/// | bit   | PML5E/PML4E | PDPTE/PDE, PS=0 | PDPTE/PDE, PS=1 (leaf) | PTE (leaf)  |
/// |-------|-------------|-----------------|------------------------|-------------|
/// | 0     | P           | P               | P                      | P           |
/// | 1     | R/W         | R/W             | R/W                    | R/W         |
/// | 2     | U/S         | U/S             | U/S                    | U/S         |
/// | 3, 4  | PWT, PCD    | PWT, PCD        | PWT, PCD               | PWT, PCD    |
/// | 5     | A           | A               | A                      | A           |
/// | 6     | ignored     | ignored         | D                      | D           |
/// | 7     | reserved    | PS = 0          | PS = 1                 | PAT         |
/// | 8     | ign. (AMD: reserved) | ignored | G                     | G           |
/// | 11:9  | ignored     | ignored         | ignored                | ignored     |
/// | 12    | address     | address         | PAT                    | address     |
/// | M-1:… | next table  | next table      | frame (≥ bit 21 or 30) | frame       |
/// | 29:13 / 20:13 | —   | —               | reserved (1 GiB / 2 MiB) | —         |
/// | 51:M  | reserved    | reserved        | reserved               | reserved    |
/// | 62:59 | ignored     | ignored         | protection key         | prot. key   |
/// | 63    | XD (reserved unless EFER.NXE) | XD | XD                 | XD          |
struct X86Format<D: BitVectorDomain>: EntryFormat {
  let levels: Int
  /// MAXPHYADDR of the dimension: the guest's for guest tables, the host's for NPT.
  let addressBits: Int
  /// AMD reserves bit 8 of PML4 and PML5 entries (KVM `nonleaf_bit8_rsvd`, Xen).
  let vendor: Vendor
  /// Without 1-GiB pages, PS in a PDPTE is reserved.
  let gigabytePages: Bool
  /// EFER.NXE of the dimension: without it, bit 63 is reserved.
  let executeDisable: D.Flag

  /// Bit 0.
  @inline(__always)
  func isPresent(_ d: D, _ entry: D.Word) -> D.Flag { d.bit(entry, X86Bit.present) }

  /// A reserved bit is set (SEMANTICS §1.3, KVM `rsvd_bits_mask[leaf][level]`):
  ///
  /// - every level: bits 51:M, and bit 63 when EFER.NXE = 0;
  /// - PML5E, PML4E: bit 7 (PS must be 0), and bit 8 on AMD;
  /// - PDPTE leaf: bits 29:13, and bit 7 itself without 1-GiB pages;
  /// - PDE leaf: bits 20:13.
  @inline(__always)
  func isMalformed(_ d: D, _ entry: D.Word, level: Int, leaf: D.Flag) -> D.Flag {
    let high = mask(51, addressBits)
    let xdReserved = d.and(d.bit(entry, X86Bit.executeDisable), d.not(executeDisable))
    let levelMask: (leaf: UInt64, nonLeaf: UInt64)
    switch level {
    case 4, 5:
      let nonLeaf = high | 1 << 7 | (vendor == .amd ? 1 << 8 : 0)
      levelMask = (nonLeaf, nonLeaf)
    case 3:
      levelMask = (high | mask(29, 13) | (gigabytePages ? 0 : 1 << 7), high)
    case 2:
      levelMask = (high | mask(20, 13), high)
    default:
      levelMask = (high, high)
    }
    let reserved =
      levelMask.leaf == levelMask.nonLeaf
      ? d.anySet(entry, levelMask.leaf)
      : d.select(leaf, d.anySet(entry, levelMask.leaf), d.anySet(entry, levelMask.nonLeaf))
    return d.or(reserved, xdReserved)
  }
}

/// Bit positions of the x86 entry fields the model reads (see ``X86Format``'s table).
enum X86Bit {
  static let present = 0
  static let writable = 1
  static let user = 2
  /// Page-level write-through.
  static let writeThrough = 3
  /// Page-level cache disable.
  static let cacheDisable = 4
  static let accessed = 5
  static let dirty = 6
  static let pageSize = 7
  /// PAT in a PTE (where bit 7 is not PS).
  static let pageAttributeSmall = 7
  /// Global, in a leaf (honoured with CR4.PGE).
  static let global = 8
  /// PAT in a 2-MiB or 1-GiB leaf.
  static let pageAttributeLarge = 12
  static let executeDisable = 63
  /// The protection key: bits 62:59 of a leaf.
  static let keyHigh = 62
  static let keyLow = 59
}
