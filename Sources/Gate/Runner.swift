import Machine

/// Runs built specs through the engines, one check after another, within the run's time budget.
///
/// Specs run in the order given and checks in each spec's order, so results come out in the
/// same order every time. A spec whose shadow the fast MMU builds gets it built once, first;
/// if that fails, every property check of the spec reports why. Fuzz checks start from the
/// spec's state without a built shadow (the fuzzed MMU builds its own).
public struct Runner: Sendable {
  /// The engines.
  public var engines: Engines
  /// The bound on the whole run; checks that would start after it report undecided.
  public var timeBudget: Duration?
  /// Whether reports show each check's time.
  public var timings: Bool

  /// Makes a runner.
  public init(engines: Engines = .builtIn, timeBudget: Duration? = nil, timings: Bool = false) {
    self.engines = engines
    self.timeBudget = timeBudget
    self.timings = timings
  }

  /// Runs every check of every spec.
  public func run(_ specs: [BuiltSpec]) -> GateReport {
    let clock = ContinuousClock()
    let deadline = timeBudget.map { clock.now + $0 }
    var records: [SpecRecord] = []
    for built in specs {
      records.append(run(built, clock: clock, deadline: deadline))
    }
    return GateReport(specs: records, timeBudget: timeBudget, timings: timings)
  }

  /// The outcome of a check that did not start because the time budget ran out.
  func budgetExhausted() -> EngineOutcome {
    let budget = timeBudget.map(Quantity.describe) ?? ""
    return EngineOutcome(
      .undecided, "the run's time budget (--time-budget \(budget)) ran out before this started")
  }

  func run(
    _ built: BuiltSpec, clock: ContinuousClock, deadline: ContinuousClock.Instant?
  ) -> SpecRecord {
    let spec = built.spec
    func context(_ check: String) -> CheckContext {
      CheckContext(spec: spec.name, file: spec.file, check: check, deadline: deadline)
    }
    func expired() -> Bool { deadline.map { clock.now >= $0 } ?? false }

    // The shadow, when the fast MMU is to build it.
    var state = built.state
    var shadowBuild: EngineOutcome?
    if let recipe = built.shadowRecipe {
      if expired() {
        shadowBuild = budgetExhausted()
      } else {
        switch engines.shadowBuilder.buildShadow(recipe, from: state, context: context("shadow")) {
        case .built(let withShadow) where withShadow.shadow != nil:
          state = withShadow
          shadowBuild = EngineOutcome(.holds, "built by the fast MMU in \(recipe.mode) mode")
        case .built:
          shadowBuild = EngineOutcome(.error, "the shadow builder returned a state with no shadow")
        case .notBuilt(let outcome):
          shadowBuild = outcome
        }
      }
    }

    var results: [CheckResult] = []
    for check in built.checks {
      let start = clock.now
      let outcome: EngineOutcome
      switch check.kind {
      case .property(let property):
        if let shadowBuild, shadowBuild.verdict != .holds {
          outcome = EngineOutcome(
            shadowBuild.verdict == .error ? .error : .undecided,
            "no shadow to check: " + shadowBuild.detail)
        } else if expired() {
          outcome = budgetExhausted()
        } else {
          outcome = engines.prover.prove(
            property, in: state, budget: spec.proofBudget, context: context(check.name))
        }
      case .fuzz(let mode):
        if expired() {
          outcome = budgetExhausted()
        } else {
          let budget = spec.fuzz?.budget ?? FuzzBudget(seed: 1, operations: 1)
          outcome = engines.fuzzer.fuzz(
            mode, from: built, budget: budget, context: context(check.name))
        }
      }
      results.append(
        CheckResult(
          spec: spec.name, file: spec.file, check: check.name, kind: check.kind,
          expected: check.expected, actual: outcome.verdict, detail: outcome.detail,
          duration: clock.now - start))
    }
    return SpecRecord(
      name: spec.name, file: spec.file, description: spec.description,
      expectation: spec.expectation, shadowBuild: shadowBuild, results: results)
  }
}
