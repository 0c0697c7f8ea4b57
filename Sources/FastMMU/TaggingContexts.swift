/// The tag a cached translation carries (SEMANTICS §6.1–6.3): the VPID (or ASID), the PCID and
/// the EP4TA (or nested root; a shadow root under shadow paging). Whether an entry is global is
/// a flag of the entry, not part of its tag.
struct ContextTag: Hashable {
  var vpid: UInt64
  var pcid: UInt64
  var root: UInt64
}

/// Small integer names for ``ContextTag``s, so a cached entry compares one number, and a TLB
/// entry folds it into its 64-bit tag above the page number (bits 63:52). Names are never
/// reused within a generation; when 4095 are in use the names start over in a new generation,
/// and the owner drops every cached entry (eviction is always allowed).
///
/// The tag of each name sits in a flat table (``ContextNames``) that invalidations read
/// through a plain pointer: a context-wide invalidation tests each entry's tag with one load.
final class TaggingContexts {
  private var ids: [ContextTag: UInt32] = [:]
  /// The tags by name, for ``capacity`` names; the first ``count`` are assigned.
  let names: ContextNames
  /// The number of names assigned in this generation.
  private(set) var count = 0
  /// The names most recently asked for, checked before the dictionary: a register write asks
  /// again for the names it had.
  private var recent: (UInt32, UInt32) = (.max, .max)
  /// Incremented each time the names start over.
  private(set) var generation = 0

  /// The most names one generation holds: 12 bits, less the all-ones value that marks an
  /// empty TLB entry.
  static let capacity = 4095

  init() {
    names = ContextNames(tags: .allocate(capacity: Self.capacity))
  }

  deinit { names.tags.deallocate() }

  /// The name of `tag`, assigned on first use.
  func id(_ tag: ContextTag) -> UInt32 {
    if recent.0 != .max && names[recent.0] == tag { return recent.0 }
    if recent.1 != .max && names[recent.1] == tag {
      recent = (recent.1, recent.0)
      return recent.0
    }
    let id = lookUp(tag)
    recent = (id, recent.0)
    return id
  }

  private func lookUp(_ tag: ContextTag) -> UInt32 {
    if let id = ids[tag] { return id }
    if count == Self.capacity {
      ids = [:]
      count = 0
      recent = (.max, .max)
      generation += 1
    }
    let id = UInt32(count)
    (names.tags + count).initialize(to: tag)
    count += 1
    ids[tag] = id
    return id
  }

  /// The tag a name stands for.
  @inline(__always)
  func tag(of id: UInt32) -> ContextTag { names[id] }
}

/// The tag of each assigned name, at a fixed address for the owner's lifetime.
struct ContextNames {
  let tags: UnsafeMutablePointer<ContextTag>

  /// The tag of an assigned name.
  @inline(__always)
  subscript(id: UInt32) -> ContextTag { tags[Int(truncatingIfNeeded: id)] }
}
