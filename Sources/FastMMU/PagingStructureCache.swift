#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One paging-structure-cache entry (Intel SDM Vol. 3A §4.10.3, SEMANTICS §6.1): the upper bits
/// of an address mapped to the table that translates the next lower level, with the rights
/// accumulated down to it.
///
/// | field       | meaning                                                             |
/// |-------------|---------------------------------------------------------------------|
/// | `tag`       | address >> (3 + 9·level): the indices of this level and above       |
/// | `context`   | the tagging context (``TaggingContexts``) the entry belongs to       |
/// | `rights`    | accumulated rights, in the owning walker's encoding                 |
/// | `table`     | host physical address of the next lower table                       |
/// | `guestTable`| its guest-physical address (combined guest caches), else 0          |
/// | `tableRights`| nested rights of the next table's translation (combined caches)    |
struct CachedStructure: Sendable {
  var tag: UInt64
  var table: UInt64
  var guestTable: UInt64
  var context: UInt32
  var rights: UInt16
  var tableRights: UInt16

  static let empty = CachedStructure(
    tag: .max, table: 0, guestTable: 0, context: 0, rights: 0, tableRights: 0)
}

/// Direct-mapped paging-structure caches for levels 2 (PDE cache) to 5 (PML5E cache), one
/// array per level. The combined guest caches of the 2D walk and the guest-physical caches of
/// the nested walk are both instances. An entry is filled only from a successful walk, after
/// its A flags are set; any entry may be evicted at any time (SEMANTICS §6.1).
///
/// A walker holds a ``Handle``, a plain value, so looking up costs no reference counting. A
/// ``SlotSet`` says which slots hold an entry, so an invalidation by context visits only
/// those.
final class PagingStructureCache {
  /// The storage as walkers use it.
  let handle: Handle

  /// Caches with `entriesPerLevel` entries for each level (rounded up to a power of two).
  init(entriesPerLevel: Int) {
    var count = 1
    while count < entriesPerLevel { count <<= 1 }
    let storage = UnsafeMutablePointer<CachedStructure>.allocate(capacity: 4 * count)
    storage.initialize(repeating: .empty, count: 4 * count)
    handle = Handle(storage: storage, entriesPerLevel: count, occupied: .allocate(slots: 4 * count))
  }

  deinit {
    handle.storage.deallocate()
    handle.occupied.deallocate()
  }

  /// Entries per level.
  var entriesPerLevel: Int { handle.entriesPerLevel }

  /// Drops every entry, of every level, that could be used for `address` in a context for
  /// which `matches` holds.
  @inline(__always)
  func invalidate(address: UInt64, where matches: (UInt32) -> Bool) {
    let storage = handle.storage
    for level in 2...5 {
      let tag = Handle.tag(address, level: level)
      let index = handle.slot(level: level, tag: tag)
      if storage[index].tag == tag && matches(storage[index].context) {
        storage[index] = .empty
        handle.occupied.remove(index)
      }
    }
  }

  /// Drops every entry whose context satisfies `matches`.
  @inline(__always)
  func invalidate(where matches: (UInt32) -> Bool) {
    let storage = handle.storage
    let occupied = handle.occupied
    occupied.forEach { index in
      if matches(storage[index].context) {
        storage[index] = .empty
        occupied.remove(index)
      }
    }
  }

  /// Drops every entry.
  func flush() {
    let storage = handle.storage
    handle.occupied.forEach { storage[$0] = .empty }
    handle.occupied.removeAll()
  }

  /// The number of entries held.
  var count: Int { handle.occupied.count }

  /// The cache's storage and geometry.
  struct Handle {
    let storage: UnsafeMutablePointer<CachedStructure>
    let entriesPerLevel: Int
    /// The slots that hold an entry.
    let occupied: SlotSet

    /// The tag of `address` at `level`.
    @inline(__always)
    static func tag(_ address: UInt64, level: Int) -> UInt64 {
      address &>> UInt64(truncatingIfNeeded: 3 &+ 9 &* level)
    }

    @inline(__always)
    func slot(level: Int, tag: UInt64) -> Int {
      (level &- 2) &* entriesPerLevel
        &+ Int(truncatingIfNeeded: tag & UInt64(truncatingIfNeeded: entriesPerLevel &- 1))
    }

    /// The entry of `level` (2…5) for `address` in `context`, if cached.
    @inline(__always)
    func lookup(_ address: UInt64, level: Int, context: UInt32) -> CachedStructure? {
      let tag = Self.tag(address, level: level)
      let entry = storage[slot(level: level, tag: tag)]
      return entry.tag == tag && entry.context == context ? entry : nil
    }

    /// Caches the walk of `address` down to `level`.
    @inline(__always)
    func insert(
      _ address: UInt64, level: Int, context: UInt32, table: UInt64, rights: UInt16,
      guestTable: UInt64 = 0, tableRights: UInt16 = 0
    ) {
      let tag = Self.tag(address, level: level)
      let index = slot(level: level, tag: tag)
      storage[index] = CachedStructure(
        tag: tag, table: table, guestTable: guestTable, context: context, rights: rights,
        tableRights: tableRights)
      occupied.insert(index)
    }
  }
}
