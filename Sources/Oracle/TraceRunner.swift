import Machine
import ReferenceModel

/// What running a trace against a target found.
public enum TraceVerdict: Hashable, Sendable {
  /// Every observation was allowed.
  case agreed
  /// The observation of operation `index` (0-based) was outside the allowed set.
  case diverged(index: Int, Divergence)
  /// The target crashed, hung or answered garbage at operation `index` (or at the reset,
  /// `index` -1).
  case targetFailed(index: Int, TargetError)
  /// The target refused the start state; nothing was judged.
  case setupRefused(String)
  /// The memory the target exports disagrees with the oracle's after operation `index`.
  case memoryDisagrees(index: Int, MemoryDisagreement)
  /// The state the target exports fails a proof (`--prove-every`) after operation `index`.
  case proofFailed(index: Int, String)

  /// Whether the verdict reports a defect of the target.
  public var isFailure: Bool {
    switch self {
    case .agreed, .setupRefused: false
    default: true
    }
  }

  /// The operation index the failure is at, if it is one.
  public var failureIndex: Int? {
    switch self {
    case .diverged(let index, _), .targetFailed(let index, _), .memoryDisagrees(let index, _),
      .proofFailed(let index, _):
      index
    default: nil
    }
  }
}

/// What one run of a trace found, and what the oracle did.
public struct TraceRun: Sendable {
  /// The verdict.
  public var verdict: TraceVerdict
  /// The operations applied, in order (up to and including a failing one).
  public var operations: [TraceOperation] = []
  /// What the target reported for each.
  public var observations: [TraceObservation] = []
  /// The oracle's statistics.
  public var statistics = OracleStatistics()
}

/// Runs traces against a target with the oracle judging every observation (docs/fuzzing.md).
public struct TraceRunner {
  /// The target.
  public let target: any Target
  /// The semantics it is judged against.
  public let mode: OracleMode
  /// The IMPL choices tried first.
  public var preferredChoices: Choices<Concrete> = .kvm
  /// Compare the target's exported memory with the oracle's every this many operations (and
  /// after the last); 0 never.
  public var memoryCheckInterval = 0

  /// Check the state the target exports with `stateCheck` every this many operations; 0
  /// never. The check returns why the state is wrong, or `nil`.
  public var stateCheckInterval = 0
  /// The check (`--prove-every`: the prover's soundness and page-table protection).
  public var stateCheck: ((MachineState) -> String?)? = nil

  /// At most this many operations are sent ahead through a ``PipeliningTarget`` before their
  /// answers are judged; 1 sends them one at a time, like any other target. A window also
  /// ends at every memory and state check, so that the export sees the target after exactly
  /// the operations it would one at a time. 64 answers of a few hundred bytes fit the socket
  /// buffers many times over, and more buys little: the round trip is already paid once per
  /// window.
  public var pipelineWindow = 64

  /// A runner for `target` under `mode`.
  public init(target: any Target, mode: OracleMode) {
    self.target = target
    self.mode = mode
  }

  /// Resets the target to `state` and applies `operations`, stopping at the first failure.
  public func run(_ state: MachineState, _ operations: [TraceOperation]) -> TraceRun {
    var source = operations.makeIterator()
    return run(state, count: operations.count) { _ in source.next() }
  }

  /// Resets the target to `state` and applies up to `count` operations drawn from `next`
  /// (which sees the index), stopping at the first failure. Through a ``PipeliningTarget``,
  /// `next` is called up to a window ahead of the operations judged (see ``pipelineWindow``),
  /// so what it returns must not depend on what the target observed.
  public func run(_ state: MachineState, count: Int, next: (Int) -> TraceOperation?) -> TraceRun {
    var result = TraceRun(verdict: .agreed)
    let oracle: Oracle
    do {
      oracle = try Oracle(mode: mode, state: state, preferredChoices: preferredChoices)
    } catch {
      result.verdict = .setupRefused("oracle: \(error.message)")
      return result
    }
    do {
      try target.reset(to: state)
    } catch {
      result.verdict =
        error.kind == .setupRefused ? .setupRefused(error.detail) : .targetFailed(index: -1, error)
      return result
    }
    let exporter = target as? StateExporting
    func finish(_ verdict: TraceVerdict) -> TraceRun {
      result.verdict = verdict
      result.statistics = oracle.statistics
      return result
    }
    if pipelineWindow > 1, let pipelining = target as? PipeliningTarget {
      return finish(
        runPipelined(
          pipelining, count: count, next: next, oracle: oracle, exporter: exporter,
          into: &result))
    }
    for index in 0..<count {
      guard let operation = next(index) else { break }
      result.operations.append(operation)
      let observation: TraceObservation
      do {
        observation = try target.apply(operation)
      } catch {
        return finish(.targetFailed(index: index, error))
      }
      result.observations.append(observation)
      if case .diverges(let divergence) = oracle.check(operation, observation) {
        return finish(.diverged(index: index, divergence))
      }
      if let failure = checks(after: index, count: count, oracle: oracle, exporter: exporter) {
        return finish(failure)
      }
    }
    return finish(.agreed)
  }

  /// The memory and state checks due after operation `index` of `count`, and the first failure
  /// they find.
  @inline(__always)
  func checks(after index: Int, count: Int, oracle: Oracle, exporter: StateExporting?)
    -> TraceVerdict?
  {
    guard let exporter else { return nil }
    let last = index == count - 1
    if memoryCheckInterval > 0, last || (index + 1) % memoryCheckInterval == 0,
      let exported = exporter.exportState(),
      let disagreement = oracle.compareMemory(exported)
    {
      return .memoryDisagrees(index: index, disagreement)
    }
    if stateCheckInterval > 0, let stateCheck, last || (index + 1) % stateCheckInterval == 0,
      let exported = exporter.exportState(), let failure = stateCheck(exported)
    {
      return .proofFailed(index: index, failure)
    }
    return nil
  }
}
