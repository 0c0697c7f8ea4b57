/// The Intel EPT entry format (SEMANTICS §2.2; Intel SDM Vol. 3C §28.3.2, Tables 28-1 to 28-6).
///
/// | bit   | PML5E/PML4E | PDPTE/PDE, bit 7 = 0 | PDPTE/PDE, bit 7 = 1 (leaf) | PTE (leaf) |
/// |-------|-------------|----------------------|-----------------------------|------------|
/// | 0     | R           | R                    | R                           | R          |
/// | 1     | W           | W                    | W                           | W          |
/// | 2     | X (XS with MBEC) | X               | X                           | X          |
/// | 5:3   | reserved    | reserved             | memory type                 | memory type|
/// | 6     | reserved    | reserved             | IPAT                        | IPAT       |
/// | 7     | reserved    | 0                    | 1                           | ignored    |
/// | 8     | A (EPTP[6]) | A                    | A                           | A          |
/// | 9     | ignored     | ignored              | D (EPTP[6])                 | D          |
/// | 10    | XU (MBEC)   | XU                   | XU                          | XU         |
/// | N-1:12| next table  | next table           | frame (≥ bit 21 or 30)      | frame      |
/// | 29:12 / 20:12 | —   | —                    | reserved (1 GiB / 2 MiB)    | —          |
/// | 51:N  | reserved    | reserved             | reserved                    | reserved   |
/// | 63    | suppress #VE| suppress #VE         | suppress #VE                | suppress #VE |
///
/// An entry is present when bits 2:0 are not all zero, or, with mode-based execute control,
/// when bit 10 is set.
struct EPTFormat<D: BitVectorDomain>: EntryFormat {
  let levels: Int
  /// N, the host's physical-address width.
  let addressBits: Int
  /// Whether XWR = 100 (execute-only) is supported (IA32_VMX_EPT_VPID_CAP bit 0).
  let executeOnly: Bool
  /// Whether 1-GiB EPT pages are supported; without them bit 7 of a PDPTE is reserved.
  let gigabytePages: Bool
  /// Mode-based execute control.
  let modeBasedExecute: D.Flag

  /// Bits 2:0 ≠ 000, or bit 10 with mode-based execute control (SEMANTICS §2.2).
  @inline(__always)
  func isPresent(_ d: D, _ entry: D.Word) -> D.Flag {
    d.or(d.anySet(entry, 0b111), d.and(modeBasedExecute, d.bit(entry, EPTBit.userExecute)))
  }

  /// A misconfiguration (SEMANTICS §2.3, checked only on present entries):
  ///
  /// - M1: XWR = 010 (write-only) or 110 (write and execute);
  /// - M2: XWR = 100 (execute-only) where execute-only is unsupported;
  /// - M3: a reserved bit (KVM `__reset_rsvds_bits_mask_ept`): bits 51:N everywhere;
  ///   bits 7:3 of PML5E/PML4E; bits 6:3 of non-leaf PDPTE/PDE; bits 29:12 of a 1-GiB leaf
  ///   and bit 7 itself without 1-GiB pages; bits 20:12 of a 2-MiB leaf;
  /// - M4: a leaf whose memory type (bits 5:3) is 2, 3 or 7.
  ///
  /// Which of these fired is ``misconfiguration(_:_:level:leaf:)``.
  @inline(__always)
  func isMalformed(_ d: D, _ entry: D.Word, level: Int, leaf: D.Flag) -> D.Flag {
    let m = misconfiguration(d, entry, level: level, leaf: leaf)
    return d.or(d.or(m.writeWithoutRead, m.executeOnly), d.or(m.reserved, m.memoryType))
  }

  /// The four misconfiguration conditions M1–M4 of SEMANTICS §2.3, separately.
  @inline(__always)
  func misconfiguration(_ d: D, _ entry: D.Word, level: Int, leaf: D.Flag) -> (
    writeWithoutRead: D.Flag, executeOnly: D.Flag, reserved: D.Flag, memoryType: D.Flag
  ) {
    let xwr = d.masked(entry, 0b111)
    let writeWithoutRead = d.or(d.equal(xwr, d.word(0b010)), d.equal(xwr, d.word(0b110)))
    let executeOnlyBad = executeOnly ? d.no : d.equal(xwr, d.word(0b100))
    let high = mask(51, addressBits)
    let reserved: D.Flag
    switch level {
    case 4, 5:
      reserved = d.anySet(entry, high | mask(7, 3))
    case 3:
      let leafMask = high | mask(29, 12) | (gigabytePages ? 0 : 1 << 7)
      reserved = d.select(leaf, d.anySet(entry, leafMask), d.anySet(entry, high | mask(6, 3)))
    case 2:
      reserved = d.select(
        leaf, d.anySet(entry, high | mask(20, 12)), d.anySet(entry, high | mask(6, 3)))
    default:
      reserved = d.anySet(entry, high)
    }
    let type = d.field(entry, 5, 3)
    let badType = d.or(
      d.or(d.equal(type, d.word(2)), d.equal(type, d.word(3))), d.equal(type, d.word(7)))
    return (writeWithoutRead, executeOnlyBad, reserved, d.and(leaf, badType))
  }
}

/// Bit positions of the EPT entry fields the model reads (see ``EPTFormat``'s table).
enum EPTBit {
  static let read = 0
  static let write = 1
  static let execute = 2
  /// The leaf's EPT memory type: bits 5:3.
  static let memoryTypeHigh = 5
  static let memoryTypeLow = 3
  /// Ignore PAT, in a leaf.
  static let ignorePAT = 6
  /// Bit 7 of a PDPTE or PDE: the entry maps a large page.
  static let largePage = 7
  static let accessed = 8
  static let dirty = 9
  static let userExecute = 10
  /// Suppress #VE.
  static let suppressVE = 63
}
