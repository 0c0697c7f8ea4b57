import Machine
import Testing

@testable import Gate

/// The runner: every check goes to its engine, verdicts become statuses, and the gate's outcome
/// never passes on undecided.
@Suite struct RunnerTests {
  static let library = SpecLibraryTests.library

  static func spec(_ name: String) throws -> BuiltSpec {
    try #require(library.first { $0.spec.name == name })
  }

  @Test func withEnginesUnavailableEveryCheckIsUndecidedNeverPassed() throws {
    let report = Runner(engines: .unavailable).run(Self.library)
    #expect(report.results.count == Self.library.reduce(0) { $0 + $1.checks.count })
    #expect(report.results.allSatisfy { $0.actual == .undecided && $0.status == .undecided })
    #expect(report.results.allSatisfy { $0.detail.contains("engine not available") })
    #expect(report.outcome == .undecided)
    #expect(report.outcome.exitCode == 3)
  }

  @Test func aRunWhoseVerdictsAreAllAsExpectedPasses() throws {
    let positive = try Self.spec("ept-shadow-basic")
    let report = Runner(engines: ScriptedEngines().engines).run([positive])
    #expect(report.results.map(\.status) == Array(repeating: .passed, count: 5))
    #expect(report.outcome == .passed)
    #expect(report.outcome.exitCode == 0)
  }

  @Test func aNegativeSpecPassesOnlyWhenItsPropertyIsViolated() throws {
    let negative = try Self.spec("soundness-wrong-frame")
    let holding = Runner(engines: ScriptedEngines().engines).run([negative])
    #expect(holding.results.first { $0.check == "soundness" }?.status == .failed)
    #expect(holding.outcome == .failed)

    var engines = ScriptedEngines()
    engines.verdicts["soundness"] = EngineOutcome(.violated, "gva 0x7f0000000000: wrong frame")
    let violated = Runner(engines: engines.engines).run([negative])
    #expect(violated.results.map(\.status) == [.passed, .passed, .passed])
    #expect(violated.outcome == .passed)
  }

  @Test func aViolationWhereHoldsWasExpectedFails() throws {
    var engines = ScriptedEngines()
    engines.verdicts["isolation"] = EngineOutcome(.violated, "host physical 0x2_0000_0000")
    let report = Runner(engines: engines.engines).run([try Self.spec("ept-shadow-basic")])
    #expect(report.results.first { $0.check == "isolation" }?.status == .failed)
    #expect(report.count(.failed) == 1)
    #expect(report.outcome.exitCode == 1)
  }

  @Test func aFailedVerdictOutranksAnEngineErrorWhichOutranksUndecided() throws {
    let basic = try Self.spec("ept-shadow-basic")
    var engines = ScriptedEngines()
    engines.verdicts["soundness"] = EngineOutcome(.undecided, "resource limit")
    #expect(Runner(engines: engines.engines).run([basic]).outcome == .undecided)
    engines.verdicts["accessed-dirty"] = EngineOutcome(.error, "Z3 aborted")
    #expect(Runner(engines: engines.engines).run([basic]).outcome == .error)
    #expect(Runner(engines: engines.engines).run([basic]).outcome.exitCode == 4)
    engines.verdicts["isolation"] = EngineOutcome(.violated, "outside")
    #expect(Runner(engines: engines.engines).run([basic]).outcome == .failed)
  }

  @Test func aShadowTheFastMMUCannotBuildLeavesItsPropertiesUndecidedButFuzzRuns() throws {
    let built = try Self.spec("ept-4level-basic")
    var engines = ScriptedEngines()
    engines.shadowFailure = EngineOutcome(.undecided, "out of shadow frames")
    let record = Runner(engines: engines.engines).run([built]).specs[0]
    #expect(record.shadowBuild == EngineOutcome(.undecided, "out of shadow frames"))
    let properties = record.results.filter { $0.kind.category == "property" }
    let fuzz = record.results.filter { $0.kind.category == "fuzz" }
    #expect(!properties.isEmpty && !fuzz.isEmpty)
    #expect(properties.allSatisfy { $0.actual == .undecided })
    #expect(properties.allSatisfy { $0.detail == "no shadow to check: out of shadow frames" })
    #expect(fuzz.allSatisfy { $0.status == .passed })
  }

  @Test func aBuiltShadowIsWhatThePropertiesSee() throws {
    let built = try Self.spec("ept-4level-basic")
    #expect(built.state.shadow == nil)
    #expect(built.shadowRecipe?.operations.count == 3)
    let record = Runner(engines: ScriptedEngines().engines).run([built]).specs[0]
    // The scripted prover answers `error` for a shadow property on a state without a shadow.
    #expect(record.results.allSatisfy { $0.status == .passed })
    #expect(record.shadowBuild?.verdict == .holds)
  }

  @Test func aShadowBuilderThatReturnsNoShadowIsAnEngineError() throws {
    struct Forgetful: ShadowBuilder {
      func buildShadow(
        _ recipe: ShadowRecipe, from state: MachineState, context: CheckContext
      ) -> ShadowBuildResult { .built(state) }
    }
    var engines = ScriptedEngines().engines
    engines.shadowBuilder = Forgetful()
    let record = Runner(engines: engines).run([try Self.spec("paravirtual-batch")]).specs[0]
    #expect(record.shadowBuild?.verdict == .error)
    #expect(record.results.allSatisfy { $0.actual == .error })
  }

  @Test func anExhaustedTimeBudgetMakesEveryLaterCheckUndecided() throws {
    let runner = Runner(engines: ScriptedEngines().engines, timeBudget: .zero)
    let report = runner.run(Array(Self.library.prefix(5)))
    #expect(report.results.allSatisfy { $0.actual == .undecided })
    #expect(
      report.results.allSatisfy {
        $0.detail.contains("time budget (--time-budget 0 ms) ran out")
      })
    #expect(report.outcome == .undecided)
  }

  @Test func enginesGetTheSpecTheCheckAndTheDeadline() throws {
    final class Recorder: PropertyProver, @unchecked Sendable {
      var contexts: [CheckContext] = []
      func prove(
        _ property: Property, in state: MachineState, budget: ProofBudget, context: CheckContext
      ) -> EngineOutcome {
        contexts.append(context)
        return EngineOutcome(.holds)
      }
    }
    let recorder = Recorder()
    var engines = ScriptedEngines().engines
    engines.prover = recorder
    _ = Runner(engines: engines, timeBudget: .seconds(60)).run([try Self.spec("dirty-tracking")])
    #expect(
      recorder.contexts.map(\.check) == ["soundness", "accessed-dirty", "page-table-protection"])
    #expect(recorder.contexts.allSatisfy { $0.spec == "dirty-tracking" && $0.deadline != nil })
    #expect(recorder.contexts.allSatisfy { $0.file.hasSuffix("specs/shadow/dirty-tracking.yaml") })
  }

  @Test func checksKeepTheSpecsOrderAndTheirExpectedVerdicts() throws {
    let built = try Self.spec("soundness-hardware-wp-off")
    #expect(built.checks.map(\.name) == ["entry-lemmas", "soundness"])
    #expect(built.checks.map(\.expected) == [.holds, .violated])
    let fuzzed = try Self.spec("fuzz-all-modes")
    #expect(fuzzed.checks.map(\.name) == ["fuzz-nested", "fuzz-shadow", "fuzz-paravirtual"])
    #expect(fuzzed.checks.allSatisfy { $0.expected == .holds })
  }
}
