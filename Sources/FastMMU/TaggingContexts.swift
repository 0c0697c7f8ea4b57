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
final class TaggingContexts {
  private var ids: [ContextTag: UInt32] = [:]
  private var tags: [ContextTag] = []
  /// Incremented each time the names start over.
  private(set) var generation = 0

  /// The most names one generation holds: 12 bits, less the all-ones value that marks an
  /// empty TLB entry.
  static let capacity = 4095

  /// The name of `tag`, assigned on first use.
  func id(_ tag: ContextTag) -> UInt32 {
    if let id = ids[tag] { return id }
    if tags.count == Self.capacity {
      ids = [:]
      tags = []
      generation += 1
    }
    let id = UInt32(tags.count)
    tags.append(tag)
    ids[tag] = id
    return id
  }

  /// The tag a name stands for.
  func tag(of id: UInt32) -> ContextTag { tags[Int(id)] }
}
