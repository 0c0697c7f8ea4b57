/// Reserved bits of present x86-64 paging entries, per level and leaf-ness, exactly as KVM's
/// `__reset_rsvds_bits_mask` encodes them (SEMANTICS §1.3):
///
/// | entry            | reserved                                      |
/// |------------------|-----------------------------------------------|
/// | PML5E, PML4E     | HI, bit 7 (PS must be 0), bit 8 on AMD        |
/// | PDPTE → table    | HI, bit 7 without 1-GiB pages (KVM's quirk)   |
/// | PDPTE → 1 GiB    | HI, bits 29:13, bit 7 without 1-GiB pages     |
/// | PDE → table      | HI                                            |
/// | PDE → 2 MiB      | HI, bits 20:13                                |
/// | PTE              | HI                                            |
///
/// where HI is bits 51:M, plus bit 63 when EFER.NXE = 0 (XD is then reserved, SEMANTICS §1.9).
/// HI depends on the processor and EFER; the rest depends only on the vendor and 1-GiB
/// support, so it lives in one of four constant tables a walker indexes by level and leaf.
struct X86ReservedBits {
  /// HI: bits 51:M, and bit 63 without NXE; reserved at every level.
  let high: UInt64
  /// The level-specific bits, indexed by `2 · level + leaf`.
  let levelBits: UnsafePointer<UInt64>

  /// The masks for a processor with `addressBits` of physical address.
  init(addressBits: Int, executeDisable: Bool, gigabytePages: Bool, amd: Bool) {
    high = Self.bits(51, UInt64(addressBits)) | (executeDisable ? 0 : 1 << 63)
    levelBits = UnsafePointer(Self.tables[(amd ? 2 : 0) + (gigabytePages ? 1 : 0)])
  }

  /// The mask for an entry at `level`.
  @inline(__always)
  func mask(level: Int, leaf: Bool) -> UInt64 {
    high | levelBits[level &* 2 &+ (leaf ? 1 : 0)]
  }

  /// The four constant tables: (Intel, AMD) × (no 1-GiB pages, 1-GiB pages).
  nonisolated(unsafe) private static let tables: [UnsafeMutablePointer<UInt64>] = [
    table(amd: false, gigabytePages: false), table(amd: false, gigabytePages: true),
    table(amd: true, gigabytePages: false), table(amd: true, gigabytePages: true),
  ]

  private static func table(amd: Bool, gigabytePages: Bool) -> UnsafeMutablePointer<UInt64> {
    let top = X86Entry.pageSize | (amd ? X86Entry.global : 0)
    let noGigabyte: UInt64 = gigabytePages ? 0 : X86Entry.pageSize
    let values: [UInt64] = [
      0, 0,  // no level 0
      0, 0,  // PTE
      0, bits(20, 13),  // PDE: table, 2 MiB
      noGigabyte, bits(29, 13) | noGigabyte,  // PDPTE: table, 1 GiB
      top, top,  // PML4E
      top, top,  // PML5E
    ]
    let table = UnsafeMutablePointer<UInt64>.allocate(capacity: values.count)
    table.initialize(from: values, count: values.count)
    return table
  }

  /// Bits `high` down to `low`, inclusive; empty when `low` > `high`.
  static func bits(_ high: UInt64, _ low: UInt64) -> UInt64 {
    guard low <= high else { return 0 }
    let width = high - low + 1
    return (width >= 64 ? ~0 : (1 << width) - 1) << low
  }
}
