import Machine
import Prover

/// The prover of issue 3 as the gate's ``PropertyProver``: each property is proved by
/// `Prover.prove(_:options:file:)` over the spec's state (SEMANTICS §5.5), under the spec's
/// proof budget and never past the run's deadline.
///
/// Only a proof is a pass: a property the prover does not know, a query that hit its timeout or
/// resource limit, a property the prover skipped (isolation with nothing that translates) are
/// all ``Verdict/undecided``, with the reason.
public struct ProverEngine: PropertyProver {
  /// Worker tasks per proof, each with its own Z3 context.
  public var jobs: Int

  /// Makes the engine.
  public init(jobs: Int = 2) {
    self.jobs = jobs
  }

  /// Proves `property` of `state`.
  public func prove(
    _ property: Property, in state: MachineState, budget: ProofBudget, context: CheckContext
  ) -> EngineOutcome {
    guard let name = PropertyName(rawValue: property.rawValue) else {
      return EngineOutcome(
        .undecided, "the prover does not know the property \(property.rawValue)")
    }
    var options = ProverOptions()
    options.properties = [name]
    options.jobs = jobs
    if let limit = budget.resourceLimit {
      options.resourceLimit = UInt32(clamping: limit)
    }
    // The spec's time limit bounds each query; so does what is left of the run's budget.
    var milliseconds = budget.time.map(Self.milliseconds) ?? options.timeoutMilliseconds
    if let deadline = context.deadline {
      let left = max(1, Self.milliseconds(deadline - ContinuousClock.now))
      milliseconds = min(milliseconds ?? left, left)
    }
    options.timeoutMilliseconds = milliseconds
    let report: ProofReport
    do {
      report = try Prover.prove(state, options: options, file: context.file)
    } catch {
      return Self.outcome(of: error)
    }
    guard let result = report.results.first(where: { $0.property == name }) else {
      return EngineOutcome(.error, "the prover returned no verdict on \(name.rawValue)")
    }
    switch result.verdict {
    case .proved:
      return EngineOutcome(.holds, "proved for every address and access")
    case .violated(let counterexample):
      return EngineOutcome(.violated, Self.describe(counterexample))
    case .unknown(let reason):
      return EngineOutcome(.undecided, "not decided: " + reason)
    case .skipped(let reason):
      return EngineOutcome(.undecided, "not checked: " + reason)
    }
  }

  /// A prover error as an outcome: a state the prover refuses or cannot hold is undecided (the
  /// spec builder accepted it, so nothing is proved either way); an internal error is an error.
  static func outcome(of error: ProverError) -> EngineOutcome {
    switch error {
    case .badInput(let problem):
      EngineOutcome(.error, "the prover refuses the state: \(problem.description)")
    case .tooLarge(let message):
      EngineOutcome(.undecided, message)
    case .internalError:
      EngineOutcome(.error, error.description)
    }
  }

  /// `gva 0x7f0000000000, user read: SUMMARY`: where the property fails and how.
  static func describe(_ counterexample: Counterexample) -> String {
    let space = counterexample.guestPhysical ? "gpa" : "gva"
    return "\(space) \(hex(counterexample.address)), \(counterexample.access): "
      + counterexample.summary
  }

  /// A duration in whole milliseconds, clamped to what Z3 takes.
  static func milliseconds(_ duration: Duration) -> UInt32 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let total = seconds.multipliedReportingOverflow(by: 1000)
    guard !total.overflow else { return UInt32.max }
    return UInt32(clamping: total.partialValue + attoseconds / 1_000_000_000_000_000)
  }
}
