import Machine

/// Driving a ``PipeliningTarget`` in windows of operations: the same verdicts as one operation
/// at a time, for a fraction of the round trips.
extension TraceRunner {
  /// Applies up to `count` operations drawn from `next` in windows of at most
  /// ``pipelineWindow``, judging every window's observations in order, and returns the verdict
  /// of one operation at a time: the first divergence, target failure or failed check, at the
  /// same index. `result` receives the operations up to and including a failing one and their
  /// observations; the operations drawn after it are discarded.
  ///
  /// The generator does not depend on observations, so drawing ahead changes nothing it
  /// draws. A window ends at every operation after which a memory or state check is due, so
  /// that the export sees the target after exactly those operations.
  func runPipelined(
    _ target: any PipeliningTarget, count: Int, next: (Int) -> TraceOperation?, oracle: Oracle,
    exporter: StateExporting?, into result: inout TraceRun
  ) -> TraceVerdict {
    var window: [TraceOperation] = []
    window.reserveCapacity(min(pipelineWindow, count))
    var start = 0
    while start < count {
      let end = windowEnd(from: start, count: count, checking: exporter != nil)
      window.removeAll(keepingCapacity: true)
      while start + window.count < end, let operation = next(start + window.count) {
        window.append(operation)
      }
      if window.isEmpty { break }
      let run = target.applyPipelined(window)
      for (offset, observation) in run.observations.enumerated() {
        let index = start + offset
        let operation = window[offset]
        result.operations.append(operation)
        result.observations.append(observation)
        if case .diverges(let divergence) = oracle.check(operation, observation) {
          return .diverged(index: index, divergence)
        }
        if let failure = checks(after: index, count: count, oracle: oracle, exporter: exporter) {
          return failure
        }
      }
      if let error = run.error {
        let failing = run.observations.count
        result.operations.append(window[min(failing, window.count - 1)])
        return .targetFailed(index: start + failing, error)
      }
      if start + window.count < end { break }  // `next` ran out
      start = end
    }
    return .agreed
  }

  /// Where the window that starts at operation `start` ends (exclusively): after at most
  /// ``pipelineWindow`` operations, at the end of the trace, and, when the target's state is
  /// `checking`, after the next operation a memory or state check follows.
  func windowEnd(from start: Int, count: Int, checking: Bool) -> Int {
    var end = min(count, start + pipelineWindow)
    guard checking else { return end }
    if memoryCheckInterval > 0 {
      end = min(end, (start / memoryCheckInterval + 1) * memoryCheckInterval)
    }
    if stateCheckInterval > 0, stateCheck != nil {
      end = min(end, (start / stateCheckInterval + 1) * stateCheckInterval)
    }
    return end
  }
}
