import Machine

/// The guest's control state over time: for each epoch, the tag its cached translations carry
/// and the root its walks start from. A translation cached at epoch t was walked from the root
/// of t and tagged with the context of t (SEMANTICS §6.1: MOV to CR3 with the PCID no-flush bit
/// keeps the entries of the new PCID, filled from whatever root it had).
struct RegisterTimeline {
  /// One stretch of epochs with the same controls.
  struct Span {
    var start: Int
    var context: CacheContext
    /// CR3[M-1:12], the guest root (a machine address under paravirtualization).
    var root: UInt64
    /// The guest's paging depth (0: paging off).
    var levels: Int
  }

  private(set) var spans: [Span]

  init(_ first: Span) { spans = [first] }

  var current: Span { spans[spans.count - 1] }

  /// Starts a new span at `epoch`.
  mutating func change(to span: Span) {
    if current.context == span.context && current.root == span.root
      && current.levels == span.levels
    {
      return
    }
    if current.start == span.start {
      spans[spans.count - 1] = span
    } else {
      spans.append(span)
    }
  }

  /// The stretches of epochs within `range` during which the guest ran in `context` with the
  /// current paging depth, most recent first, each with its root.
  func windows(_ context: CacheContext, within range: ClosedRange<Int>) -> [(
    root: UInt64, epochs: ClosedRange<Int>
  )] {
    var result: [(root: UInt64, epochs: ClosedRange<Int>)] = []
    let levels = current.levels
    var end = Int.max
    for span in spans.reversed() {
      defer { end = span.start - 1 }
      if end < range.lowerBound { break }
      guard span.context == context, span.levels == levels else { continue }
      let low = max(span.start, range.lowerBound)
      let high = min(end, range.upperBound)
      guard low <= high else { continue }
      if let last = result.last, last.root == span.root, last.epochs.lowerBound == high + 1 {
        result[result.count - 1].epochs = low...last.epochs.upperBound
      } else {
        result.append((span.root, low...high))
      }
    }
    return result
  }

  /// The first epoch of the most recent stretch during which the guest ran in the current
  /// context with the current root without interruption by a different root of that context.
  var rootStableSince: Int {
    let now = current
    var since = now.start
    for span in spans.reversed().dropFirst() {
      if span.context == now.context {
        if span.root != now.root || span.levels != now.levels { break }
      }
      since = span.start
    }
    return since
  }

  /// Forgets spans that ended before `horizon`.
  mutating func forget(before horizon: Int) {
    guard let keep = spans.indices.last(where: { spans[$0].start <= horizon }), keep > 0 else {
      return
    }
    spans.removeFirst(keep)
  }
}
