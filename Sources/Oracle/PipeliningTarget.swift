import Machine

/// A target that answers a run of operations faster than the same operations one at a time,
/// because it can work on later ones while earlier answers travel: ``ProcessTarget``, whose
/// every ``Target/apply(_:)`` costs a round trip between two processes.
///
/// ``TraceRunner`` drives such a target in windows of operations (see
/// ``TraceRunner/pipelineWindow``); every other target, in process, one operation at a time.
/// Whatever the window, the verdict, the failing index and the reproducer are those of one
/// operation at a time: the oracle judges the observations in order and stops at the first
/// failure, and the operations after it are discarded.
public protocol PipeliningTarget: Target {
  /// Applies `operations` in order, as one ``Target/apply(_:)`` each would, and stops at the
  /// first failure, which is then the run's error, for the operation at index
  /// `observations.count`. With no error, there is one observation per operation.
  func applyPipelined(_ operations: [TraceOperation]) -> PipelinedRun
}

/// What ``PipeliningTarget/applyPipelined(_:)`` (or ``Target/applyAll(_:)``) produced: the
/// observations of the operations applied, in order, and the error that stopped the run, if
/// one did — caused by the operation at index `observations.count`.
public struct PipelinedRun: Hashable, Sendable {
  /// The observations, one per operation applied.
  public var observations: [TraceObservation]
  /// The failure that ended the run early, if any.
  public var error: TargetError?

  /// Makes a run.
  public init(observations: [TraceObservation], error: TargetError?) {
    self.observations = observations
    self.error = error
  }
}

extension Target {
  /// Applies `operations` in order: pipelined through a ``PipeliningTarget`` (see
  /// ``ProcessTarget/applyPipelined(_:)``), one by one through any other target. Stops at the
  /// first error.
  public func applyAll(_ operations: [TraceOperation]) -> PipelinedRun {
    if let pipelining = self as? PipeliningTarget {
      return pipelining.applyPipelined(operations)
    }
    var observations: [TraceObservation] = []
    for operation in operations {
      do {
        observations.append(try apply(operation))
      } catch {
        return PipelinedRun(observations: observations, error: error)
      }
    }
    return PipelinedRun(observations: observations, error: nil)
  }
}
