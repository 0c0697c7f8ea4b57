/// A set of epochs (operation numbers): disjoint, non-adjacent intervals in increasing order,
/// never empty. The epochs during which a word held a value, or at which a chain of the
/// explanation search may have read its last entry (``ExplanationSearch``).
///
/// Most sets are one interval, kept inline; a value a word held, lost and held again is more.
struct Epochs: Hashable {
  private var first: ClosedRange<Int>
  /// The intervals after the first; `nil` rather than empty, so that copying a one-interval
  /// set (nearly all of them, in the search's hot loop) copies no reference.
  private var rest: [ClosedRange<Int>]? = nil

  /// The epochs of one interval.
  init(_ range: ClosedRange<Int>) { first = range }

  /// The union of `ranges`; `nil` when there are none.
  init?(union ranges: [ClosedRange<Int>]) {
    let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
    guard var current = sorted.first else { return nil }
    var merged: [ClosedRange<Int>] = []
    for range in sorted.dropFirst() {
      if current.upperBound == Int.max || range.lowerBound <= current.upperBound + 1 {
        current = current.lowerBound...max(current.upperBound, range.upperBound)
      } else {
        merged.append(current)
        current = range
      }
    }
    merged.append(current)
    first = merged[0]
    rest = merged.count > 1 ? Array(merged.dropFirst()) : nil
  }

  /// Whether the set is one interval (then ``hull`` is the set).
  var isInterval: Bool { rest == nil }
  /// The smallest interval holding the set.
  var hull: ClosedRange<Int> { first.lowerBound...upperBound }

  /// The intervals, in increasing order.
  var ranges: [ClosedRange<Int>] { [first] + (rest ?? []) }

  /// The first epoch.
  var lowerBound: Int { first.lowerBound }
  /// The last epoch.
  var upperBound: Int { rest?.last?.upperBound ?? first.upperBound }

  /// Whether `epoch` is in the set.
  func contains(_ epoch: Int) -> Bool {
    first.contains(epoch) || rest?.contains { $0.contains(epoch) } == true
  }

  /// Whether some epoch of `range` is in the set.
  func overlaps(_ range: ClosedRange<Int>) -> Bool {
    first.overlaps(range) || rest?.contains { $0.overlaps(range) } == true
  }

  /// The number of intervals.
  var count: Int { 1 + (rest?.count ?? 0) }

  /// Interval `index` (0 ..< ``count``), in increasing order.
  subscript(index: Int) -> ClosedRange<Int> {
    index == 0 ? first : (rest ?? [])[index - 1]
  }

  /// The epochs in both sets; `nil` when none. (Both lists are in increasing order: one merge
  /// pass over them, no sorting.)
  func intersection(_ other: Epochs) -> Epochs? {
    if rest == nil && other.rest == nil {
      let low = max(first.lowerBound, other.first.lowerBound)
      let high = min(first.upperBound, other.first.upperBound)
      return low <= high ? Epochs(low...high) : nil
    }
    var common = Builder()
    var i = 0
    var j = 0
    while i < count && j < other.count {
      let a = self[i]
      let b = other[j]
      let low = max(a.lowerBound, b.lowerBound)
      let high = min(a.upperBound, b.upperBound)
      if low <= high { common.append(low...high) }
      if a.upperBound < b.upperBound { i += 1 } else { j += 1 }
    }
    return common.epochs
  }

  /// The union of both sets (one merge pass, as ``intersection(_:)``).
  func union(_ other: Epochs) -> Epochs {
    var merged = Builder()
    var i = 0
    var j = 0
    while i < count || j < other.count {
      let takeMine = j == other.count || (i < count && self[i].lowerBound <= other[j].lowerBound)
      if takeMine {
        merged.append(self[i])
        i += 1
      } else {
        merged.append(other[j])
        j += 1
      }
    }
    return merged.epochs ?? self
  }

  /// Builds a set from intervals appended in increasing order of their lower bounds,
  /// coalescing those that overlap or touch.
  struct Builder {
    private var first: ClosedRange<Int>? = nil
    private var rest: [ClosedRange<Int>] = []

    mutating func append(_ range: ClosedRange<Int>) {
      guard let head = first else {
        first = range
        return
      }
      let last = rest.last ?? head
      if last.upperBound == Int.max || range.lowerBound <= last.upperBound + 1 {
        let joined = last.lowerBound...max(last.upperBound, range.upperBound)
        if rest.isEmpty { first = joined } else { rest[rest.count - 1] = joined }
      } else {
        rest.append(range)
      }
    }

    /// The set, `nil` when nothing was appended.
    var epochs: Epochs? {
      guard let first else { return nil }
      var result = Epochs(first)
      if !rest.isEmpty { result.rest = rest }
      return result
    }
  }
}
