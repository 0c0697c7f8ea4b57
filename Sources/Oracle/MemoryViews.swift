import ReferenceModel

/// Copies of the oracle's memory for the explanation search's nested views: a nested walk
/// that reads other values than the rest of its two-dimensional walk reads a copy patched with
/// them (``ExplanationSearch``, SEMANTICS §6.2).
///
/// Copying the whole memory for every search that needs a view cost more than the search's
/// walks. A copy handed back is kept, and brought up to date when it is taken again by
/// replaying the writes the oracle made to its memory since (stores, and the A/D writes of
/// accesses); the search's own overlays are undone before a copy comes back and are never
/// recorded. An oracle lives for one trace, so the pool does too.
struct MemoryViews {
  /// Copies handed back, each with the number of writes it has seen.
  private var spares: [(memory: FrameMemory, seen: Int)] = []
  /// The writes no spare has seen yet, oldest first, after the `dropped` every spare has seen.
  private var writes: [(word: UInt64, value: UInt64)] = []
  private var dropped = 0

  /// Records that the oracle's memory now holds `value` at `word`.
  mutating func noteWrite(_ word: UInt64, _ value: UInt64) {
    guard !spares.isEmpty else {
      dropped += writes.count + 1
      writes.removeAll(keepingCapacity: true)
      return
    }
    writes.append((word, value))
  }

  /// A copy of the oracle's memory as it is outside the search: a spare brought up to date, or
  /// `fresh()` when none is left.
  mutating func take(fresh: () -> FrameMemory) -> FrameMemory {
    guard var (copy, seen) = spares.popLast() else { return fresh() }
    for (word, value) in writes[(seen - dropped)...] { copy[word] = value }
    forgetSeenWrites()
    return copy
  }

  /// Takes back a copy equal to the oracle's memory outside the search.
  mutating func giveBack(_ copy: FrameMemory) {
    spares.append((copy, dropped + writes.count))
    forgetSeenWrites()
  }

  /// Drops the writes every spare has seen.
  private mutating func forgetSeenWrites() {
    let oldest = spares.map(\.seen).min() ?? dropped + writes.count
    let seenByAll = oldest - dropped
    guard seenByAll > 0 else { return }
    writes.removeFirst(seenByAll)
    dropped = oldest
  }
}
