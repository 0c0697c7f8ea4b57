/// The result of one check of one spec: what was expected, what the engine concluded, and
/// whether the gate passes it.
public struct CheckResult: Hashable, Sendable {
  /// The spec's name.
  public var spec: String
  /// The spec's file.
  public var file: String
  /// The check's name: a property, or `fuzz-MODE`.
  public var check: String
  /// What the check ran.
  public var kind: CheckKind
  /// The verdict the spec expects.
  public var expected: ExpectedVerdict
  /// The verdict the engine came to.
  public var actual: Verdict
  /// The engine's detail (counterexample, reason, figures).
  public var detail: String
  /// How long the check took; reported only when asked (`--timings`), so that the same inputs
  /// give the same reports.
  public var duration: Duration

  /// Makes a result.
  public init(
    spec: String, file: String, check: String, kind: CheckKind, expected: ExpectedVerdict,
    actual: Verdict, detail: String, duration: Duration
  ) {
    self.spec = spec
    self.file = file
    self.check = check
    self.kind = kind
    self.expected = expected
    self.actual = actual
    self.detail = detail
    self.duration = duration
  }

  /// What the gate makes of the result.
  public var status: CheckStatus {
    switch actual {
    case .holds: expected == .holds ? .passed : .failed
    case .violated: expected == .violated ? .passed : .failed
    case .undecided: .undecided
    case .error: .error
    }
  }
}

/// What the gate makes of one check.
public enum CheckStatus: String, CaseIterable, Hashable, Sendable {
  /// The verdict is the expected one.
  case passed
  /// The verdict is the other one: holds where violated was expected, or the reverse.
  case failed
  /// No verdict: never a pass.
  case undecided
  /// The engine failed.
  case error
}

/// One spec's part of a run.
public struct SpecRecord: Hashable, Sendable {
  /// The spec's name.
  public var name: String
  /// Its file.
  public var file: String
  /// Its description.
  public var description: String
  /// The verdict it expects.
  public var expectation: Expectation
  /// How its shadow came to be: `nil` when it has none or it is given raw; otherwise the
  /// shadow builder's outcome (``Verdict/holds`` when built).
  public var shadowBuild: EngineOutcome?
  /// Its checks' results, in the spec's order.
  public var results: [CheckResult]

  /// Makes a record.
  public init(
    name: String, file: String, description: String, expectation: Expectation,
    shadowBuild: EngineOutcome?, results: [CheckResult]
  ) {
    self.name = name
    self.file = file
    self.description = description
    self.expectation = expectation
    self.shadowBuild = shadowBuild
    self.results = results
  }
}

/// A whole run: every spec's results, and what the gate concludes.
public struct GateReport: Hashable, Sendable {
  /// The specs, in the order they ran (by file path).
  public var specs: [SpecRecord]
  /// The run's `--time-budget`, if any.
  public var timeBudget: Duration?
  /// Whether to report each check's time.
  public var timings: Bool

  /// Makes a report.
  public init(specs: [SpecRecord], timeBudget: Duration?, timings: Bool) {
    self.specs = specs
    self.timeBudget = timeBudget
    self.timings = timings
  }

  /// Every check's result, spec by spec.
  public var results: [CheckResult] { specs.flatMap(\.results) }

  /// How many checks ended with `status`.
  public func count(_ status: CheckStatus) -> Int {
    results.count { $0.status == status }
  }

  /// What the gate concludes.
  public var outcome: GateOutcome {
    let statuses = Set(results.map(\.status))
    if statuses.contains(.failed) { return .failed }
    if statuses.contains(.error) { return .error }
    if statuses.contains(.undecided) { return .undecided }
    return .passed
  }
}

/// What the gate concludes from a run, and the exit code that says it (docs/exit-codes.md).
public enum GateOutcome: String, CaseIterable, Hashable, Sendable {
  /// Every verdict as expected: exit 0.
  case passed
  /// At least one verdict differs from the expected one: exit 1. Wins over the others, being
  /// the most definite news.
  case failed
  /// No verdict differs, but an engine failed: exit 4.
  case error
  /// No verdict differs and no engine failed, but some check is undecided: exit 3. The gate
  /// never passes on undecided.
  case undecided

  /// The exit code.
  public var exitCode: Int32 {
    switch self {
    case .passed: 0
    case .failed: 1
    case .undecided: 3
    case .error: 4
    }
  }
}
