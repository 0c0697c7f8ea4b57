import FastMMU
import Foundation
import Machine
import Testing

@testable import Gate

/// The gate end to end with the engines nestcheck has built in — the Z3 prover, the fast MMU
/// building shadows, the differential fuzzer — on small specs, so that each verdict comes from
/// real work.
@Suite struct RealEngineTests {
  /// A 4-level guest over EPT: isolation holds and a short fuzz campaign of the nested mode.
  static let positive = minimalSpec.replacing(
    "properties: [isolation]\n",
    with: "properties: [isolation]\nfuzz: { modes: [nested], operations: 120, seed: 3 }\n")

  /// Runs `paths` with the built-in engines.
  static func check(_ paths: [String], json: String? = nil, junit: String? = nil) throws
    -> CheckResponse
  {
    try CheckRequest(paths: paths, junit: junit, json: json).perform(engines: .builtIn)
  }

  @Test func aPositiveSpecHoldsAndTheGatePasses() throws {
    let directory = try TemporaryDirectory()
    let path = try directory.write("positive.yaml", Self.positive)
    let response = try Self.check([path])
    let results = try #require(response.report?.results)
    #expect(results.map(\.check) == ["isolation", "fuzz-nested"])
    #expect(results.map(\.actual) == [.holds, .holds])
    #expect(results.first?.detail == "proved for every address and access")
    #expect(results.last?.detail.contains("120 operations in 1 episode from") == true)
    #expect(response.exitCode == 0)
  }

  @Test func aNegativeSpecComesOutViolatedAndTheGatePasses() throws {
    let response = try Self.check([repositoryPath("specs/negative/isolation-host-outside.yaml")])
    let result = try #require(response.report?.results.first)
    #expect(result.actual == .violated)
    #expect(result.status == .passed)
    // The counterexample names the guest-physical page sent outside the host ranges.
    #expect(result.detail.hasPrefix("gpa 0x400000"))
    #expect(result.detail.contains("outside the host ranges"))
    #expect(response.exitCode == 0)
  }

  @Test func aViolationOfAPositiveSpecFailsTheGate() throws {
    let directory = try TemporaryDirectory()
    let negative = try String(
      contentsOfFile: repositoryPath("specs/negative/isolation-host-outside.yaml"),
      encoding: .utf8)
    let path = try directory.write(
      "wrong.yaml", negative.replacing("expect: { violated: isolation }", with: "expect: holds"))
    let response = try Self.check([path])
    #expect(response.report?.results.first?.status == .failed)
    #expect(response.exitCode == 1)
  }

  @Test func aShadowBuiltByTheFastMMUIsProvedSound() throws {
    let response = try Self.check([repositoryPath("specs/fast-mmu/npt-shadow-built.yaml")])
    let report = try #require(response.report)
    #expect(report.specs.first?.shadowBuild?.verdict == .holds)
    let properties = report.results.filter {
      if case .property = $0.kind { return true }
      return false
    }
    #expect(
      properties.map(\.check) == [
        "soundness", "accessed-dirty", "page-table-protection", "isolation",
      ])
    #expect(properties.allSatisfy { $0.actual == .holds })
  }

  @Test func theShadowBuilderCopiesTheSpecsHostRangesIntoTheSnapshot() throws {
    let built = try #require(SpecLibraryTests.named("shadow-unsync"))
    let recipe = try #require(built.shadowRecipe)
    let context = CheckContext(spec: "s", file: "s.yaml", check: "shadow", deadline: nil)
    guard
      case .built(let state) = FastMMUShadowBuilder().buildShadow(
        recipe, from: built.state, context: context)
    else {
      Issue.record("the fast MMU built no shadow")
      return
    }
    #expect(state.hostRanges == built.state.hostRanges)
    #expect(state.shadow != nil)
    // The guest rewrote two entries of an unsynced level-1 table: the snapshot says so.
    #expect(state.shadow?.unsyncTables.isEmpty == false)
  }

  @Test func aFuzzCampaignWhoseTimeRunsOutIsUndecidedAndTheGateExitsThree() throws {
    let directory = try TemporaryDirectory()
    // A hundred million operations cannot run in a millisecond.
    let text = minimalSpec.replacing(
      "properties: [isolation]\n",
      with: "properties: [isolation]\n"
        + "fuzz: { modes: [nested], operations: 100000000, time-budget: 1ms }\n")
    let path = try directory.write("exhausted.yaml", text)
    let response = try Self.check([path])
    let fuzz = try #require(response.report?.results.last)
    #expect(fuzz.check == "fuzz-nested")
    #expect(fuzz.actual == .undecided)
    #expect(fuzz.detail.hasPrefix("the spec's fuzz time budget ran out after "))
    #expect(response.exitCode == 3)
  }

  @Test func aFuzzCampaignPastTheRunsDeadlineRunsNothingAndIsUndecided() throws {
    let built = try buildSpec(Self.positive)
    let context = CheckContext(
      spec: "t", file: "t.yaml", check: "fuzz-nested", deadline: ContinuousClock.now)
    let outcome = OracleFuzzer().fuzz(
      .nested, from: built, budget: FuzzBudget(seed: 1, operations: 1000), context: context)
    #expect(outcome.verdict == .undecided)
    #expect(outcome.detail.hasPrefix("the run's time budget ran out after 0 of 1000 operations"))
  }

  @Test func aPropertyTheProverDoesNotCheckIsUndecidedNeverHolds() throws {
    // Without nested paging and without a shadow nothing translates: the prover skips
    // isolation, and a skipped property is no proof.
    var state = try buildSpec(minimalSpec).state
    state.nested = .none
    let context = CheckContext(spec: "t", file: "t.yaml", check: "isolation", deadline: nil)
    let outcome = ProverEngine().prove(
      .isolation, in: state, budget: ProofBudget(), context: context)
    #expect(outcome.verdict == .undecided)
    #expect(outcome.detail.hasPrefix("not checked: "))
  }

  @Test func theJUnitReportOfARealRunIsWellFormed() throws {
    let directory = try TemporaryDirectory()
    let junit = directory.path("out/report.xml")
    let response = try Self.check(
      [
        try directory.write("positive.yaml", Self.positive),
        repositoryPath("specs/negative/isolation-host-outside.yaml"),
      ], junit: junit)
    #expect(response.writeFiles() == nil)
    let summary = try XMLSummary(String(contentsOfFile: junit, encoding: .utf8))
    #expect(summary.elements["testsuites"] == 1)
    #expect(summary.elements["testsuite"] == 2)
    #expect(summary.elements["testcase"] == 3)
    #expect(summary.elements["failure"] == nil)
    #expect(summary.elements["error"] == nil)
    #expect(summary.rootAttributes["tests"] == "3")
  }

  @Test func theJSONReportOfARealRunMatchesTheDocumentedSchema() throws {
    let directory = try TemporaryDirectory()
    let json = directory.path("report.json")
    let response = try Self.check(
      [
        try directory.write("positive.yaml", Self.positive),
        repositoryPath("specs/negative/isolation-host-outside.yaml"),
      ], json: json)
    #expect(response.writeFiles() == nil)
    let report = try JSON.parse(String(contentsOfFile: json, encoding: .utf8))
    #expect(try ReportSchema.load().validate(report) == [])
  }

  @Test func theSameSpecsGiveTheSameReportsByteForByte() throws {
    let directory = try TemporaryDirectory()
    let paths = [
      try directory.write("positive.yaml", Self.positive),
      repositoryPath("specs/negative/isolation-host-outside.yaml"),
    ]
    let first = try Self.check(paths)
    let second = try Self.check(paths)
    let firstReport = try #require(first.report)
    let secondReport = try #require(second.report)
    #expect(JSONReport.render(firstReport) == JSONReport.render(secondReport))
    #expect(JUnitReport.render(firstReport) == JUnitReport.render(secondReport))
    #expect(first.output == second.output)
  }
}
