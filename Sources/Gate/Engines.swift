import FastMMU
import Machine

/// What an engine concluded about one check, or about building a shadow.
public struct EngineOutcome: Hashable, Sendable {
  /// The verdict.
  public var verdict: Verdict
  /// What supports it, for people: the counterexample of a violation, the reason a check is
  /// undecided, the campaign's figures. May span several lines; reports keep it whole and the
  /// summary table shows its first line. Must not depend on timing, so that the same inputs
  /// give the same reports.
  public var detail: String

  /// Makes an outcome.
  public init(_ verdict: Verdict, _ detail: String = "") {
    self.verdict = verdict
    self.detail = detail
  }
}

/// A check's verdict.
public enum Verdict: String, CaseIterable, Hashable, Sendable {
  /// Proved, or the whole fuzz budget ran without a divergence.
  case holds
  /// A counterexample or a divergence was found.
  case violated
  /// Neither: a solver timeout or resource limit, an exhausted budget, an engine that is not
  /// available. Never a pass.
  case undecided
  /// The engine failed: a bug in nestcheck, or a state it could not take.
  case error
}

/// Where and until when a check runs: passed to every engine call.
public struct CheckContext: Sendable {
  /// The spec's name.
  public var spec: String
  /// The spec's file.
  public var file: String
  /// The check's name (`soundness`, `fuzz-shadow`).
  public var check: String
  /// The run's deadline from `--time-budget`; an engine that reaches it stops and answers
  /// ``Verdict/undecided``. `nil` for no limit.
  public var deadline: ContinuousClock.Instant?

  /// Makes a context.
  public init(spec: String, file: String, check: String, deadline: ContinuousClock.Instant?) {
    self.spec = spec
    self.file = file
    self.check = check
    self.deadline = deadline
  }
}

/// Proves properties of a state: the prover of issue 3 plugs in here.
public protocol PropertyProver: Sendable {
  /// Proves `property` of `state` (which has a shadow when the property needs one) within
  /// `budget` and the context's deadline: ``Verdict/holds`` when proved, ``Verdict/violated``
  /// with the counterexample in the detail, ``Verdict/undecided`` with the reason otherwise.
  func prove(
    _ property: Property, in state: MachineState, budget: ProofBudget, context: CheckContext
  ) -> EngineOutcome
}

/// Builds a shadow with the fast MMU: issue 4's MMU plugs in here.
public protocol ShadowBuilder: Sendable {
  /// Makes the fast MMU of `recipe.mode` over `state`, applies `recipe.operations` in order,
  /// and returns its snapshot, whose ``MachineState/shadow`` is set; or the outcome that
  /// explains why there is no shadow (``Verdict/undecided`` or ``Verdict/error``), which every
  /// check that needs the shadow then reports.
  func buildShadow(
    _ recipe: ShadowRecipe, from state: MachineState, context: CheckContext
  ) -> ShadowBuildResult
}

/// A shadow builder's answer.
public enum ShadowBuildResult: Sendable {
  /// The state with the shadow built.
  case built(MachineState)
  /// No shadow, and why.
  case notBuilt(EngineOutcome)
}

/// Fuzzes a fast-MMU mode against the oracle: the fuzzer of issue 5 plugs in here.
public protocol DifferentialFuzzer: Sendable {
  /// Runs a campaign of `budget.operations` seeded operations on `mode` from the state of
  /// `spec` (without a fast-MMU-built shadow; the spec's layout aims the generator):
  /// ``Verdict/holds`` when all ran without a divergence, ``Verdict/violated`` with the shrunk
  /// reproducer in the detail, ``Verdict/undecided`` when time ran out first.
  func fuzz(
    _ mode: MMUMode, from spec: BuiltSpec, budget: FuzzBudget, context: CheckContext
  ) -> EngineOutcome
}

/// The engines a run uses.
public struct Engines: Sendable {
  /// Proves properties.
  public var prover: any PropertyProver
  /// Builds shadows with the fast MMU.
  public var shadowBuilder: any ShadowBuilder
  /// Fuzzes fast-MMU modes.
  public var fuzzer: any DifferentialFuzzer

  /// Makes a set of engines.
  public init(
    prover: any PropertyProver, shadowBuilder: any ShadowBuilder,
    fuzzer: any DifferentialFuzzer
  ) {
    self.prover = prover
    self.shadowBuilder = shadowBuilder
    self.fuzzer = fuzzer
  }

  /// The engines this nestcheck has built in: the Z3 prover (``ProverEngine``), the fast MMU
  /// building shadows (``FastMMUShadowBuilder``) and the differential fuzzer against the
  /// oracle (``OracleFuzzer``).
  public static var builtIn: Engines {
    Engines(prover: ProverEngine(), shadowBuilder: FastMMUShadowBuilder(), fuzzer: OracleFuzzer())
  }

  /// Engines that are all missing: every check is ``Verdict/undecided``, "engine not
  /// available", never a pass. For tests of the gate's own logic and for builds without them.
  public static var unavailable: Engines {
    Engines(
      prover: UnavailableEngine(name: "the prover", issue: 3),
      shadowBuilder: UnavailableEngine(name: "the fast-MMU shadow builder", issue: 4),
      fuzzer: UnavailableEngine(name: "the differential fuzzer", issue: 5))
  }
}

/// An engine that is not part of this build: every answer is undecided, with the reason.
public struct UnavailableEngine: PropertyProver, ShadowBuilder, DifferentialFuzzer {
  /// The engine's name, for the detail: `the prover`.
  public var name: String
  /// The issue that delivers it.
  public var issue: Int

  /// Makes the stand-in.
  public init(name: String, issue: Int) {
    self.name = name
    self.issue = issue
  }

  /// The one answer: undecided, engine not available.
  public var outcome: EngineOutcome {
    EngineOutcome(.undecided, "engine not available: \(name) (issue \(issue)) is not in this build")
  }

  /// Undecided: not available.
  public func prove(
    _ property: Property, in state: MachineState, budget: ProofBudget, context: CheckContext
  ) -> EngineOutcome { outcome }

  /// Not built: not available.
  public func buildShadow(
    _ recipe: ShadowRecipe, from state: MachineState, context: CheckContext
  ) -> ShadowBuildResult { .notBuilt(outcome) }

  /// Undecided: not available.
  public func fuzz(
    _ mode: MMUMode, from spec: BuiltSpec, budget: FuzzBudget, context: CheckContext
  ) -> EngineOutcome { outcome }
}
