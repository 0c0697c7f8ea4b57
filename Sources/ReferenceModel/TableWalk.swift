/// The radix walk every x86-style paging structure shares (SEMANTICS §1.7 step 4, §2.7 step 2):
/// from a root, read one entry per level indexed by nine address bits, stop at an entry that
/// is not present or is malformed, stop at a leaf, else descend to the table the entry names.
///
/// What "present", "malformed" and "leaf" mean is the format's (``EntryFormat``): x86 entries
/// for guest and NPT tables (X86Entry.swift), EPT entries (EPTEntry.swift). What a stop means
/// — a #PF, an EPT violation, a misconfiguration, a #NPF — is decided by the caller.

/// One paging-entry format: its predicates and its geometry.
protocol EntryFormat<D> {
  associatedtype D: BitVectorDomain
  /// Paging levels: 4 or 5.
  var levels: Int { get }
  /// The physical-address width: entry address bits from here to 51 are reserved.
  var addressBits: Int { get }
  /// Whether the entry is present: the walk stops at a non-present entry, whose other bits
  /// are never examined.
  func isPresent(_ d: D, _ entry: D.Word) -> D.Flag
  /// Whether a present entry at `level` is malformed: reserved bits set, or an encoding the
  /// architecture forbids. `leaf` is ``isLeaf(_:_:level:)`` of the entry.
  func isMalformed(_ d: D, _ entry: D.Word, level: Int, leaf: D.Flag) -> D.Flag
}

extension EntryFormat {
  /// Whether a present entry at `level` maps a page: every level-1 entry does, and a level-2
  /// or level-3 entry with bit 7 set (x86 PS, EPT "large page"). Where the large page is not
  /// supported, bit 7 is a reserved bit and ``isMalformed(_:_:level:leaf:)`` reports it.
  @inline(__always)
  func isLeaf(_ d: D, _ entry: D.Word, level: Int) -> D.Flag {
    switch level {
    case 1: d.yes
    case 2, 3: d.bit(entry, 7)
    default: d.no
    }
  }

  /// The mask of bits M-1:12: where an entry holds the next table or its frame.
  @inline(__always)
  var addressMask: UInt64 { mask(addressBits - 1, 12) }

  /// Bits M-1:12 of an entry: the next table, or (masked further by the page size) the frame.
  @inline(__always)
  func address(_ d: D, _ entry: D.Word) -> D.Word {
    d.masked(entry, addressMask)
  }
}

/// The index of `address` at `level`: bits 12+9(level−1) up, nine of them.
@inline(__always) func indexShift(level: Int) -> Int { 3 &+ 9 &* level }

/// The size of the page a leaf at `level` maps: 4 KiB, 2 MiB, 1 GiB.
@inline(__always) func pageSize(level: Int) -> UInt64 {
  1 &<< UInt64(truncatingIfNeeded: indexShift(level: level))
}

/// One entry the walk read.
struct WalkedEntry<D: BitVectorDomain> {
  /// The level it was read at.
  var level: Int8
  /// Its address in the tables' own address space (guest physical for guest tables).
  var address: D.Word
  /// Its value.
  var value: D.Word
  /// Whether the walk read it.
  var read: D.Flag
  /// Whether it was read, present and well formed: part of the translation's path.
  var valid: D.Flag
  /// Whether it was valid and a leaf.
  var leaf: D.Flag
}

/// How a table walk ended, every field guarded so both interpretations can read it.
struct TableWalk<D: BitVectorDomain> {
  /// The entries read, top-down. In the symbolic interpretation every level appears (guarded
  /// by `read`); concretely the list stops where the walk did.
  var entries = LevelList<WalkedEntry<D>>()
  /// The walk stopped because fetching an entry failed (a nested fault of the 2D walk).
  var fetchFailed: D.Flag
  /// The walk stopped at a non-present entry.
  var notPresent: D.Flag
  /// The walk stopped at a malformed entry.
  var malformed: D.Flag
  /// The walk reached a valid leaf.
  var complete: D.Flag
  /// The level at which it stopped, or of its leaf.
  var stopLevel: D.Word
  /// The physical address the leaf maps `address` to (meaningful when `complete`).
  var physical: D.Word
  /// The size of the page the leaf maps (meaningful when `complete`).
  var pageSize: D.Word

  /// The walk of a dimension that has no tables: `address` maps to itself.
  init(identity d: D, _ address: D.Word) {
    fetchFailed = d.no
    notPresent = d.no
    malformed = d.no
    complete = d.yes
    stopLevel = d.word(0)
    physical = address
    pageSize = d.word(0)
  }

  init(
    fetchFailed: D.Flag, notPresent: D.Flag, malformed: D.Flag, complete: D.Flag,
    stopLevel: D.Word, physical: D.Word, pageSize: D.Word
  ) {
    self.fetchFailed = fetchFailed
    self.notPresent = notPresent
    self.malformed = malformed
    self.complete = complete
    self.stopLevel = stopLevel
    self.physical = physical
    self.pageSize = pageSize
  }

  /// The leaf entry's value (zero unless `complete`).
  func leafValue(_ d: D) -> D.Word {
    var value = d.word(0)
    entries.forEach { value = d.select($0.leaf, $0.value, value) }
    return value
  }
}

/// What fetching one entry gave: its value, and whether fetching failed (the walk then stops).
struct FetchedEntry<D: BitVectorDomain> {
  var value: D.Word
  var failed: D.Flag
}

/// Walks the tables of `format` from `root` for `address`, if `enabled`.
///
/// `fetch(entryAddress, level, live)` reads one entry: a plain memory read for tables in host
/// memory, or a nested translation and a read for guest tables (SEMANTICS §4.1 steps 3b–3c).
/// `live` tells it whether the walk really reaches this read, so it can guard what it records.
@inline(__always)
func walkTables<F: EntryFormat>(
  _ d: F.D, _ format: F, root: F.D.Word, address: F.D.Word, enabled: F.D.Flag,
  fetch: (F.D.Word, Int, F.D.Flag) -> FetchedEntry<F.D>
) -> TableWalk<F.D> {
  typealias D = F.D
  var walk = TableWalk<D>(
    fetchFailed: d.no, notPresent: d.no, malformed: d.no, complete: d.no,
    stopLevel: d.word(0), physical: d.word(0), pageSize: d.word(0))
  var table = root
  var stopped = d.not(enabled)
  // The format's address mask, computed once per walk rather than at every level.
  let addressMask = format.addressMask
  var level = format.levels
  while level >= 1 {
    defer { level -= 1 }
    if d.isCertainlyTrue(stopped) { break }
    let live = d.not(stopped)
    let index = d.masked(d.shiftRight(address, indexShift(level: level)), 0x1FF)
    let entryAddress = d.bitOr(table, d.shiftLeft(index, 3))
    let fetched = fetch(entryAddress, level, live)
    let entry = fetched.value
    let reached = d.and(live, d.not(fetched.failed))
    let present = format.isPresent(d, entry)
    let leaf = format.isLeaf(d, entry, level: level)
    let malformed = format.isMalformed(d, entry, level: level, leaf: leaf)
    let valid = d.and(reached, d.and(present, d.not(malformed)))
    let isLeaf = d.and(valid, leaf)
    walk.entries.append(
      WalkedEntry(
        level: Int8(level), address: entryAddress, value: entry, read: reached, valid: valid,
        leaf: isLeaf))

    let failedHere = d.and(live, fetched.failed)
    let notPresentHere = d.and(reached, d.not(present))
    let malformedHere = d.and(reached, d.and(present, malformed))
    walk.fetchFailed = d.or(walk.fetchFailed, failedHere)
    walk.notPresent = d.or(walk.notPresent, notPresentHere)
    walk.malformed = d.or(walk.malformed, malformedHere)
    walk.complete = d.or(walk.complete, isLeaf)
    let stopsHere = d.or(d.or(failedHere, notPresentHere), d.or(malformedHere, isLeaf))
    walk.stopLevel = d.select(stopsHere, d.word(UInt64(level)), walk.stopLevel)

    let size = pageSize(level: level)
    let frame = d.masked(entry, addressMask & ~(size &- 1))
    let mapped = d.bitOr(frame, d.masked(address, size - 1))
    walk.physical = d.select(isLeaf, mapped, walk.physical)
    walk.pageSize = d.select(isLeaf, d.word(size), walk.pageSize)

    stopped = d.or(stopped, stopsHere)
    table = d.masked(entry, addressMask)  // format.address(d, entry)
  }
  return walk
}
