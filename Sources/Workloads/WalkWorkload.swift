import Machine

/// Benchmark workload B1 of DESIGN.md ("walk2d"), also the state of B2 and B6: a 4-level
/// guest over 4-level EPT. The guest maps 1 GiB as 262,144 4-KiB pages at guest virtual
/// 0x7f00_0000_0000 onto a seeded permutation of guest frames; EPT maps every guest frame used,
/// page tables included, with 4-KiB pages.
public struct WalkWorkload: Sendable {
  /// The machine state: guest tables placed in host memory, EPT tables, registers.
  public let state: MachineState
  /// The first guest virtual address mapped.
  public let base: UInt64
  /// The number of 4-KiB pages mapped.
  public let pages: Int
  /// Guest frame → host frame offset used for every EPT mapping (host = guest + offset).
  public let hostOffset: UInt64

  /// The guest virtual base address of B1.
  public static let defaultBase: UInt64 = 0x7F00_0000_0000

  /// Builds the workload with `pages` pages (262,144 for B1) from `seed`.
  public init(pages: Int = 262_144, seed: UInt64 = 1, base: UInt64 = defaultBase) {
    var random = SeededGenerator(seed: seed)
    let dataFrames: UInt64 = 0x10000  // guest data frames start at guest physical 256 MiB
    var permutation = Array(0..<UInt64(pages))
    permutation.shuffle(using: &random)

    let leaf = EntryBits.directory | EntryBits.accessed | EntryBits.dirty
    // Directory entries carry A, as they do once hardware has walked them: a steady state.
    var guest = TableBuilder(
      levels: 4, tableArea: 0x1000, directoryBits: EntryBits.directory | EntryBits.accessed)
    for page in 0..<pages {
      let gva = base + UInt64(page) << 12
      guest.map(gva, to: (dataFrames + permutation[page]) << 12, bits: leaf)
    }

    let hostOffset: UInt64 = 0x100000  // host frame = guest frame + 4 GiB
    var ept = TableBuilder(levels: 4, tableArea: 0x1000, directoryBits: EntryBits.eptAll)
    let eptLeaf = EntryBits.eptAll | EntryBits.eptWriteBack
    for table in guest.tables {
      ept.map(table, to: table + hostOffset << 12, bits: eptLeaf)
    }
    for page in 0..<UInt64(pages) {
      let gpa = (dataFrames + page) << 12
      ept.map(gpa, to: gpa + hostOffset << 12, bits: eptLeaf)
    }

    var memory = PhysicalMemory()
    ept.place(into: &memory)
    guest.place(into: &memory) { $0 + hostOffset << 12 }
    self.state = MachineState(
      guest: GuestRegisters(
        cr0: GuestSetup.cr0, cr3: guest.root, cr4: GuestSetup.cr4(levels: 4),
        efer: GuestSetup.efer),
      nested: .ept(ExtendedPageTables(eptp: GuestSetup.eptp(root: ept.root))),
      memory: memory)
    self.base = base
    self.pages = pages
    self.hostOffset = hostOffset
  }

  /// `count` seeded random 8-byte-aligned guest virtual addresses inside the mapped range.
  public func addresses(count: Int, seed: UInt64) -> [UInt64] {
    var random = SeededGenerator(seed: seed)
    return (0..<count).map { _ in
      base + UInt64.random(in: 0..<UInt64(pages) << 12, using: &random) & ~7
    }
  }
}
