import Machine

/// Builds radix page tables into a sparse memory: x86-64 guest or NPT tables and Intel EPT
/// tables alike, since both use 4-KiB tables of 512 entries indexed by 9 address bits per
/// level, bit 7 to mark a large leaf, and bits 51:12 for the next table or the frame.
///
/// The builder knows entry *layout* only as far as it must to link tables; the caller supplies
/// every permission bit. It is a fixture for tests and benchmarks, not a model of anything.
public struct TableBuilder: Sendable {
  /// Paging levels: 4 or 5.
  public let levels: Int
  /// The address of the root table in the tables' own address space.
  public let root: UInt64
  /// Bits given to every non-leaf entry the builder creates (x86: P|R/W|U/S; EPT: R|W|X).
  public var directoryBits: UInt64
  /// The tables' contents, keyed by addresses in the tables' own address space.
  public private(set) var memory = PhysicalMemory()
  /// The address of every table, in allocation order (the root first).
  public private(set) var tables: [UInt64]
  private var nextTable: UInt64

  /// Bit 7 of a PDE or PDPTE (x86 PS, EPT "large page"): the entry is a leaf.
  public static let largePage: UInt64 = 1 << 7
  /// Bits 51:12, where an entry holds the next table or the frame.
  public static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000

  /// Starts an empty tree whose tables are allocated one 4-KiB frame after another from
  /// `tableArea` (4-KiB aligned), the root first.
  public init(levels: Int, tableArea: UInt64, directoryBits: UInt64) {
    precondition(levels == 4 || levels == 5, "4- or 5-level tables")
    precondition(tableArea & 0xFFF == 0, "tables are 4-KiB aligned")
    self.levels = levels
    self.root = tableArea
    self.directoryBits = directoryBits
    self.tables = [tableArea]
    self.nextTable = tableArea + 0x1000
  }

  /// The index of `address` in a table at `level` (1 = page table, … 5 = PML5).
  public static func index(of address: UInt64, level: Int) -> UInt64 {
    (address >> UInt64(12 + 9 * (level - 1))) & 0x1FF
  }

  /// The size of a page mapped by a leaf at `level`: 4 KiB, 2 MiB or 1 GiB.
  public static func pageSize(level: Int) -> UInt64 { 1 << UInt64(12 + 9 * (level - 1)) }

  /// Maps the page containing `address` to the frame at `target` with a leaf at `pageLevel`
  /// (1: 4 KiB, 2: 2 MiB, 3: 1 GiB) whose bits other than the address are `bits` (bit 7 is
  /// added for large leaves). Missing tables on the way are created with ``directoryBits``.
  public mutating func map(_ address: UInt64, to target: UInt64, pageLevel: Int = 1, bits: UInt64) {
    let size = Self.pageSize(level: pageLevel)
    precondition(target & (size - 1) == 0, "frame not aligned to its page size")
    let slot = entryAddress(of: address, level: pageLevel, creating: true)
    memory[slot] = target | bits | (pageLevel > 1 ? Self.largePage : 0)
  }

  /// Writes a raw value into the entry that translates `address` at `level`, creating the
  /// tables above it: for odd cases the layout-level `map` cannot express.
  public mutating func setEntry(of address: UInt64, level: Int, to value: UInt64) {
    memory[entryAddress(of: address, level: level, creating: true)] = value
  }

  /// The entry that translates `address` at `level`, or zero if a table above it is missing.
  public func entry(of address: UInt64, level: Int) -> UInt64 {
    var table = root
    for current in stride(from: levels, to: level, by: -1) {
      let e = memory[table + 8 * Self.index(of: address, level: current)]
      guard e != 0, e & Self.largePage == 0 || current == 1 else { return 0 }
      table = e & Self.addressMask
    }
    return memory[table + 8 * Self.index(of: address, level: level)]
  }

  /// The address of the entry that translates `address` at `level`, creating missing tables
  /// above it.
  public mutating func entryAddress(of address: UInt64, level: Int, creating: Bool) -> UInt64 {
    var table = root
    for current in stride(from: levels, to: level, by: -1) {
      let slot = table + 8 * Self.index(of: address, level: current)
      let e = memory[slot]
      if e & Self.addressMask == 0 || (e & Self.largePage != 0) {
        precondition(creating, "no table at level \(current - 1)")
        let fresh = nextTable
        nextTable += 0x1000
        tables.append(fresh)
        memory[slot] = fresh | directoryBits
        table = fresh
      } else {
        table = e & Self.addressMask
      }
    }
    return table + 8 * Self.index(of: address, level: level)
  }

  /// Copies every table into `host`, each 4-KiB table at the host address `place` gives for
  /// its own address (the identity when the tables live in host memory already).
  public func place(into host: inout PhysicalMemory, at place: (UInt64) -> UInt64 = { $0 }) {
    for (address, value) in memory.words {
      let frame = place(address & ~0xFFF)
      host[frame | (address & 0xFFF)] = value
    }
  }
}

/// Entry bits by name, for building fixtures readably. These are layout facts of the manuals
/// (Intel SDM Vol. 3A §4.5, Vol. 3C §28.2), not rules: no decision is made with them here.
public enum EntryBits {
  /// x86 present.
  public static let present: UInt64 = 1 << 0
  /// x86 read/write.
  public static let writable: UInt64 = 1 << 1
  /// x86 user/supervisor.
  public static let user: UInt64 = 1 << 2
  /// x86 accessed.
  public static let accessed: UInt64 = 1 << 5
  /// x86 dirty (leaves).
  public static let dirty: UInt64 = 1 << 6
  /// x86 global (leaves).
  public static let global: UInt64 = 1 << 8
  /// x86 execute-disable.
  public static let executeDisable: UInt64 = 1 << 63
  /// P | R/W | U/S: the permissive non-leaf entry.
  public static let directory: UInt64 = present | writable | user

  /// EPT read.
  public static let eptRead: UInt64 = 1 << 0
  /// EPT write.
  public static let eptWrite: UInt64 = 1 << 1
  /// EPT execute (supervisor execute with mode-based execute control).
  public static let eptExecute: UInt64 = 1 << 2
  /// EPT leaf memory type write-back (6) in bits 5:3.
  public static let eptWriteBack: UInt64 = 6 << 3
  /// EPT accessed (with EPTP bit 6).
  public static let eptAccessed: UInt64 = 1 << 8
  /// EPT dirty (with EPTP bit 6).
  public static let eptDirty: UInt64 = 1 << 9
  /// EPT user execute (mode-based execute control).
  public static let eptUserExecute: UInt64 = 1 << 10
  /// R | W | X.
  public static let eptAll: UInt64 = eptRead | eptWrite | eptExecute
}

/// Register values for the usual guest set-ups.
public enum GuestSetup {
  /// CR0 with PE, ET, WP and PG set.
  public static let cr0: UInt64 = 0x8001_0011
  /// CR4 with PAE set, plus LA57 for 5-level paging.
  public static func cr4(levels: Int) -> UInt64 { levels == 5 ? 0x1020 : 0x20 }
  /// EFER with LME, LMA and NXE set.
  public static let efer: UInt64 = 0xD00
  /// An EPTP for a root at `root`: write-back, the given walk length, A/D flags as asked.
  public static func eptp(root: UInt64, levels: Int = 4, accessedDirty: Bool = false) -> UInt64 {
    root | (accessedDirty ? 1 << 6 : 0) | UInt64(levels - 1) << 3 | 6
  }
}
