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

  /// The epochs in both sets; `nil` when none.
  func intersection(_ other: Epochs) -> Epochs? {
    if rest == nil && other.rest == nil {
      let low = max(first.lowerBound, other.first.lowerBound)
      let high = min(first.upperBound, other.first.upperBound)
      return low <= high ? Epochs(low...high) : nil
    }
    var common: [ClosedRange<Int>] = []
    for a in ranges {
      for b in other.ranges {
        let low = max(a.lowerBound, b.lowerBound)
        let high = min(a.upperBound, b.upperBound)
        if low <= high { common.append(low...high) }
      }
    }
    return Epochs(union: common)
  }

  /// The union of both sets.
  func union(_ other: Epochs) -> Epochs {
    Epochs(union: ranges + other.ranges) ?? self
  }
}
