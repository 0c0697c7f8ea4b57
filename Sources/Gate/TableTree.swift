import Workloads

/// Radix page tables under construction in one address space — guest physical for the guest's
/// tables, host physical for nested and shadow tables — with a record of who wrote each entry,
/// so that a spec whose parts contradict each other is refused with both parts named, never
/// resolved by a guess.
///
/// x86, NPT and EPT tables share the layout this needs: 4-KiB tables of 512 entries indexed by 9
/// address bits per level, bit 7 marking a large leaf, bits 51:12 holding the next table or the
/// frame. Permission bits are the caller's.
struct TableTree {
  /// Who wrote an entry.
  enum Writer: Equatable {
    /// A leaf of a mapping, named (`guest-mappings[2]`).
    case leaf(String)
    /// A directory entry the builder made on the way to an entry written by the named element.
    case directory(String)
    /// A raw entry, named (`raw-entries[0]`); `pointer` when it points to a table.
    case raw(String, pointer: Bool)
  }

  /// A contradiction or a lack of room, described for the element being written.
  struct Conflict: Error {
    /// What is wrong.
    let message: String
  }

  /// Which tables these are, for messages: `guest`, `nested`, `shadow`.
  let name: String
  /// Paging levels: 4 or 5.
  let levels: Int
  /// Bits of every directory entry the builder makes.
  let directoryBits: UInt64
  /// The root table.
  let root: UInt64
  /// Every table, the root first, in allocation order.
  private(set) var tables: [UInt64]
  /// The entries, by address.
  private(set) var words: [UInt64: UInt64] = [:]
  private var writers: [UInt64: Writer] = [:]

  /// Starts a tree whose root is the allocator's next frame.
  init(
    name: String, levels: Int, directoryBits: UInt64, allocator: inout FrameAllocator
  ) throws(Conflict) {
    self.name = name
    self.levels = levels
    self.directoryBits = directoryBits
    root = try allocator.allocate(for: "the \(name) root table")
    tables = [root]
  }

  /// The index of `address` in a table at `level`.
  static func index(of address: UInt64, level: Int) -> UInt64 {
    (address >> UInt64(12 + 9 * (level - 1))) & 0x1FF
  }

  /// `PML4E`, `PDE`, ...: the name of an entry at `level`.
  static func entryName(level: Int) -> String {
    ["PTE", "PDE", "PDPTE", "PML4E", "PML5E"][max(0, min(level, 5) - 1)]
  }

  // MARK: - Writing

  /// Writes a mapping's leaf for `address` at `level`, making the directories above it;
  /// `accessedBits` are ORed into every directory entry on the way.
  mutating func mapLeaf(
    _ address: UInt64, level: Int, value: UInt64, accessedBits: UInt64, writer: String,
    allocator: inout FrameAllocator
  ) throws(Conflict) {
    let slot = try slotCreatingTables(
      address, level: level, writer: writer, accessedBits: accessedBits, allocator: &allocator)
    if let existing = writers[slot] {
      throw Conflict(message: "its \(describe(level)) is already written by \(existing.name)")
    }
    words[slot] = value
    writers[slot] = .leaf(writer)
  }

  /// Writes a raw entry for `address` at `level`: `value`, plus the address of `target` when it
  /// points to a table. Refuses to replace a mapping's leaf, another raw entry, or a directory
  /// entry unless it keeps pointing at the same table.
  mutating func writeRaw(
    _ address: UInt64, level: Int, value: UInt64, target: UInt64?, writer: String,
    allocator: inout FrameAllocator
  ) throws(Conflict) {
    let slot = try slotCreatingTables(
      address, level: level, writer: writer, accessedBits: 0, allocator: &allocator)
    switch writers[slot] {
    case nil:
      break
    case .leaf(let mapping):
      throw Conflict(
        message: "it would replace the \(describe(level)) that \(mapping) writes; a raw entry "
          + "may not change a mapping (leave that page out of the mapping instead)")
    case .raw(let other, _):
      throw Conflict(message: "\(other) already writes this \(describe(level))")
    case .directory(let first):
      let current = (words[slot] ?? 0) & TableBuilder.addressMask
      guard let target, target == current else {
        throw Conflict(
          message: "it would replace the \(describe(level)) above the tables of \(first), "
            + "unmapping them; to change the entry's bits, point it at the table it points to "
            + "(points-to: the level-\(level - 1) table of the same address)")
      }
    }
    words[slot] = value | (target ?? 0)
    writers[slot] = .raw(writer, pointer: target != nil)
  }

  /// The address of the entry for `address` at `level`, making the tables above it.
  private mutating func slotCreatingTables(
    _ address: UInt64, level: Int, writer: String, accessedBits: UInt64,
    allocator: inout FrameAllocator
  ) throws(Conflict) -> UInt64 {
    var table = root
    for current in stride(from: levels, to: level, by: -1) {
      let slot = table + 8 * Self.index(of: address, level: current)
      switch writers[slot] {
      case nil:
        let fresh = try allocator.allocate(for: "a \(name) table")
        tables.append(fresh)
        words[slot] = fresh | directoryBits | accessedBits
        writers[slot] = .directory(writer)
        table = fresh
      case .directory, .raw(_, pointer: true):
        let entry = words[slot] ?? 0
        if case .directory = writers[slot] { words[slot] = entry | accessedBits }
        table = entry & TableBuilder.addressMask
      case .leaf(let mapping):
        throw Conflict(
          message: "it lies under the \(describe(current)) leaf that \(mapping) writes")
      case .raw(let other, pointer: false):
        throw Conflict(
          message: "it lies under the \(describe(current)) that \(other) writes, which points to "
            + "no table")
      }
    }
    return table + 8 * Self.index(of: address, level: level)
  }

  // MARK: - Reading

  /// The table holding the level-`level` entry on the walk of `address`, following entries the
  /// tree wrote; `nil` when a table on the way is missing.
  func table(on address: UInt64, level: Int) -> UInt64? {
    var table = root
    for current in stride(from: levels, to: level, by: -1) {
      let slot = table + 8 * Self.index(of: address, level: current)
      switch writers[slot] {
      case .directory, .raw(_, pointer: true):
        table = (words[slot] ?? 0) & TableBuilder.addressMask
      default:
        return nil
      }
    }
    return table
  }

  /// `guest PDE`, `nested PML4E`.
  func describe(_ level: Int) -> String { "\(name) \(Self.entryName(level: level))" }
}

extension TableTree.Writer {
  /// The element that wrote the entry.
  var name: String {
    switch self {
    case .leaf(let name), .directory(let name), .raw(let name, _): name
    }
  }
}

/// Hands out 4-KiB frames for tables: one after another from an address the spec gives, or the
/// lowest frames that are free (outside `occupied`) and acceptable (inside `allowed`).
struct FrameAllocator {
  /// The next candidate frame.
  private var next: UInt64
  /// Whether frames are taken one after another with no search.
  private let consecutive: Bool
  /// Where frames may be taken from.
  private let allowed: AddressSet
  /// What frames must avoid.
  private let occupied: AddressSet
  /// The end of the address space: frames must lie below.
  private let limit: UInt64
  /// The address space's name for messages: `guest physical`, `host physical`.
  private let space: String

  /// Frames one after another from `base`, below `limit`.
  init(from base: UInt64, limit: UInt64, space: String) {
    next = base
    consecutive = true
    allowed = AddressSet()
    occupied = AddressSet()
    self.limit = limit
    self.space = space
  }

  /// The lowest frames from 0x1000 up that lie in `allowed`, outside `occupied`, below `limit`.
  init(allowed: AddressSet, avoiding occupied: AddressSet, limit: UInt64, space: String) {
    next = 0x1000
    consecutive = false
    self.allowed = allowed
    self.occupied = occupied
    self.limit = limit
    self.space = space
  }

  /// The next frame, for `purpose` (named in the error when there is no room).
  mutating func allocate(for purpose: String) throws(TableTree.Conflict) -> UInt64 {
    var candidate = next
    if !consecutive {
      while true {
        guard let range = allowed.firstRange(endingAtOrAfter: candidate) else {
          candidate = limit
          break
        }
        candidate = max(candidate, (range.lower + 0xFFF) & ~0xFFF)
        if candidate > range.last || range.last - candidate < 0xFFF {
          guard range.last < UInt64.max - 0x1000 else {
            candidate = limit
            break
          }
          candidate = (range.last + 1 + 0xFFF) & ~0xFFF
          continue
        }
        let frame = AddressRange(lower: candidate, size: 0x1000)
        if let taken = occupied.firstPresent(in: frame) {
          let holder = occupied.range(containing: taken) ?? frame
          guard holder.last < UInt64.max - 0x1000 else {
            candidate = limit
            break
          }
          candidate = (holder.last + 1 + 0xFFF) & ~0xFFF
          continue
        }
        break
      }
    }
    guard candidate < limit, limit - candidate >= 0x1000 else {
      throw TableTree.Conflict(
        message: consecutive
          ? "no room for \(purpose): tables from the table area would pass the end of the "
            + "\(space) address space"
          : "no room for \(purpose): no free \(space) frame is left")
    }
    next = candidate + 0x1000
    return candidate
  }
}
