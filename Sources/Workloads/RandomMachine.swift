import Machine

/// The paging shape of a machine: guest levels (0 = paging off) over a nested dimension.
public struct PagingShape: Hashable, Sendable, CustomStringConvertible {
  /// The nested dimension's kind.
  public enum Nested: Hashable, Sendable {
    /// No nested paging.
    case none
    /// Intel EPT with 4 or 5 levels.
    case ept(levels: Int)
    /// AMD NPT with 4 or 5 levels.
    case npt(levels: Int)
  }

  /// 0 (paging off), 4 or 5.
  public var guestLevels: Int
  /// The nested dimension.
  public var nested: Nested

  /// Makes a shape.
  public init(guestLevels: Int, nested: Nested) {
    self.guestLevels = guestLevels
    self.nested = nested
  }

  /// Every shape: guest paging off, 4- or 5-level, over none, EPT 4/5 or NPT 4/5.
  public static let all: [PagingShape] = [0, 4, 5].flatMap { guest in
    [Nested.none, .ept(levels: 4), .ept(levels: 5), .npt(levels: 4), .npt(levels: 5)].map {
      PagingShape(guestLevels: guest, nested: $0)
    }
  }

  /// `guest 4 / ept 5` and so on.
  public var description: String {
    let guest = guestLevels == 0 ? "guest paging off" : "guest \(guestLevels)-level"
    switch nested {
    case .none: return guest
    case .ept(let levels): return guest + " over EPT \(levels)-level"
    case .npt(let levels): return guest + " over NPT \(levels)-level"
    }
  }
}

/// Small random machines for randomized testing: a few guest mappings (4 KiB, 2 MiB, 1 GiB)
/// over a nested dimension that maps everything the guest uses, random control bits, then a
/// few random bit flips in random entries so that every kind of fault and exit occurs.
///
/// Deterministic: the same shape and seed give the same machine.
public struct RandomMachine: Sendable {
  /// The machine.
  public let state: MachineState
  /// Guest virtual addresses worth accessing: every mapped page, neighbours, and a few random
  /// and non-canonical addresses.
  public let addresses: [UInt64]
  /// The guest physical frames that hold guest page tables.
  public let guestTables: [UInt64]

  /// Builds a random machine of `shape` from `seed`.
  public init(shape: PagingShape, seed: UInt64) {
    var random = SeededGenerator(seed: seed)
    func chance(_ percent: UInt64) -> Bool { UInt64.random(in: 0..<100, using: &random) < percent }
    func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }

    let vendor: Vendor
    switch shape.nested {
    case .ept: vendor = .intel
    case .npt: vendor = .amd
    case .none: vendor = chance(50) ? .intel : .amd
    }
    let processor = Processor(
      vendor: vendor, physicalAddressBits: pick([36, 39, 46, 52]), gigabytePages: chance(80))

    // Guest mappings: a cluster of pages so tables are shared, plus a few far away.
    let guestLevels = shape.guestLevels
    let leafBase = EntryBits.present | EntryBits.writable | EntryBits.user
    var mappings: [(gva: UInt64, gpa: UInt64, level: Int)] = []
    let cluster = UInt64.random(in: 0..<(1 << 35), using: &random) << 12 & mask47
    var nextData: UInt64 = 0x4000_0000  // guest data frames from 1 GiB up
    for i in 0..<Int.random(in: 2...6, using: &random) {
      let level = chance(70) ? 1 : (chance(70) ? 2 : 3)
      let size: UInt64 = 1 << UInt64(12 + 9 * (level - 1))
      let gva =
        i < 3
        ? (cluster &+ UInt64(i) * size) & ~(size - 1)
        : UInt64.random(
          in: 0..<(1 << 47), using: &random) & ~(size - 1)
      nextData = (nextData + size - 1) & ~(size - 1)
      mappings.append((gva, nextData, level))
      nextData += size
    }

    var guest = TableBuilder(
      levels: max(guestLevels, 4), tableArea: 0x1000, directoryBits: leafBase)
    if guestLevels > 0 {
      for m in mappings {
        let flags =
          leafBase | (chance(50) ? EntryBits.accessed : 0)
          | (chance(50) ? EntryBits.dirty : 0)
        guest.map(m.gva, to: m.gpa, pageLevel: m.level, bits: flags)
      }
    }
    let guestTables = guestLevels > 0 ? guest.tables : []

    // The nested dimension maps every guest table frame and every data page the guest uses
    // (a guest with paging off uses guest physical = linear).
    var memory = PhysicalMemory()
    let hostOffset: UInt64 = 0x1_0000_0000  // host = guest physical + 4 GiB
    let nested: NestedPaging
    var nestedTables: TableBuilder?
    switch shape.nested {
    case .none:
      nested = .none
    case .ept(let levels), .npt(let levels):
      let isEPT = if case .ept = shape.nested { true } else { false }
      let bits = isEPT ? EntryBits.eptAll : EntryBits.directory
      let leafBits = isEPT ? EntryBits.eptAll | EntryBits.eptWriteBack : EntryBits.directory
      var tables = TableBuilder(levels: levels, tableArea: 0x2000_0000, directoryBits: bits)
      for frame in guestTables { tables.map(frame, to: frame + hostOffset, bits: leafBits) }
      for m in mappings {
        let gpa = guestLevels > 0 ? m.gpa : m.gva & 0xFFFF_F000
        let level = guestLevels > 0 && chance(60) ? m.level : 1
        let size: UInt64 = 1 << UInt64(12 + 9 * (level - 1))
        tables.map(
          gpa & ~(size - 1), to: (gpa & ~(size - 1)) + hostOffset, pageLevel: level,
          bits: leafBits | (isEPT && chance(30) ? EntryBits.eptAccessed : 0))
      }
      nestedTables = tables
      if isEPT {
        nested = .ept(
          ExtendedPageTables(
            eptp: GuestSetup.eptp(root: tables.root, levels: levels, accessedDirty: chance(50)),
            physicalAddressBits: 46, executeOnly: chance(70), gigabytePages: chance(80),
            modeBasedExecute: chance(30)))
      } else {
        nested = .npt(
          NestedPageTables(
            nCR3: tables.root, hostCR4: levels == 5 ? 0x1020 : 0x20,
            hostEFER: chance(80) ? 0xD00 : 0x500, physicalAddressBits: 48))
      }
    }
    if let nestedTables { nestedTables.place(into: &memory) }
    let isNested = if case .none = shape.nested { false } else { true }
    guest.place(into: &memory) { isNested ? $0 + hostOffset : $0 }

    // Random bit flips in random entries: the interesting bits of both formats.
    let interesting: [Int] = [
      0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 7, 8, 10, 12, 13, 21, 30, 47, 51, 59, 63,
    ]
    let words = memory.words.keys.sorted()
    for _ in 0..<Int.random(in: 0...3, using: &random) where !words.isEmpty {
      let address = pick(words)
      memory[address] ^= 1 << UInt64(pick(interesting))
    }

    let cr0 = GuestSetup.cr0 & ~(chance(30) ? UInt64(1) << 16 : 0)
    var cr4 = guestLevels == 0 ? 0 : GuestSetup.cr4(levels: guestLevels)
    for bit in [20, 21, 22, 24] where chance(35) { cr4 |= 1 << UInt64(bit) }
    let efer: UInt64 = guestLevels == 0 ? (chance(50) ? 0x800 : 0) : (chance(70) ? 0xD00 : 0x500)
    let cr0Final = guestLevels == 0 ? cr0 & ~(1 << 31) : cr0
    let registers = GuestRegisters(
      cr0: cr0Final, cr3: guestLevels == 0 ? 0 : guest.root, cr4: cr4, efer: efer,
      rflags: chance(40) ? 0x40002 : 0x2,
      pkru: chance(30) ? UInt64.random(in: 0...UInt64(UInt32.max), using: &random) : 0,
      pkrs: chance(30) ? UInt64.random(in: 0...UInt64(UInt32.max), using: &random) : 0)

    var addresses: [UInt64] = []
    for m in mappings {
      let size: UInt64 = 1 << UInt64(12 + 9 * (m.level - 1))
      addresses.append(m.gva | UInt64.random(in: 0..<size, using: &random) & ~7)
      addresses.append(m.gva &+ size)  // the next page, often unmapped
    }
    addresses.append(UInt64.random(in: 0..<(1 << 47), using: &random) & ~7)
    addresses.append(0x8000_0000_0000 | UInt64.random(in: 0..<(1 << 40), using: &random) & ~7)
    addresses.append(0xFFFF_8000_0000_0000 | cluster)
    if guestLevels == 0 { addresses = addresses.map { $0 & 0xFFFF_FFFF } }

    self.state = MachineState(
      processor: processor, guest: registers, nested: nested, memory: memory)
    self.addresses = addresses
    self.guestTables = guestTables
  }
}

private let mask47: UInt64 = (1 << 47) - 1
