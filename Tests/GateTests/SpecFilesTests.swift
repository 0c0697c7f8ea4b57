import Foundation
import Machine
import Testing

@testable import Gate

/// Finding spec files, refusing bad ones before anything runs, and the whole `check` request.
@Suite struct SpecFilesTests {
  static func spec(named name: String) -> String {
    minimalSpec.replacing("name: t", with: "name: \(name)")
  }

  @Test func directoriesAreSearchedForYAMLFilesInPathOrder() throws {
    let directory = try TemporaryDirectory()
    try directory.write("b/two.yaml", Self.spec(named: "two"))
    try directory.write("a/one.yml", Self.spec(named: "one"))
    try directory.write("a/notes.md", "not a spec")
    try directory.write(".hidden/three.yaml", "not: read")
    try directory.write("a/.four.yaml", "not: read")
    let found = try SpecFiles.discover([directory.url.path])
    #expect(found == [directory.path("a/one.yml"), directory.path("b/two.yaml")])
    // A file named on the command line is read whatever its extension; repeats count once.
    let named = try directory.write("extra.spec", Self.spec(named: "extra"))
    #expect(try SpecFiles.discover([named, directory.path("b"), named]).count == 2)
  }

  @Test func aMissingPathAndAnEmptyDirectoryAreBadInput() throws {
    let directory = try TemporaryDirectory()
    try directory.write("empty/readme.txt", "")
    #expect(throws: FormatError(file: "absent", field: "", message: "no such file or directory")) {
      try SpecFiles.discover(["absent"])
    }
    let empty = directory.path("empty")
    #expect(
      throws: FormatError(
        file: empty, field: "", message: "no spec files (*.yaml, *.yml) in this directory or below")
    ) { try SpecFiles.discover([empty]) }
  }

  @Test func twoSpecsWithOneNameAreRefusedAtTheSecondName() throws {
    let directory = try TemporaryDirectory()
    let first = try directory.write("a.yaml", Self.spec(named: "same"))
    let second = try directory.write("b.yaml", Self.spec(named: "same"))
    #expect(
      throws: FormatError(
        file: second, position: SourcePosition(line: 2, column: 7), field: "name",
        message: "the name \"same\" is already used by \(first); spec names are unique in a run")
    ) { try SpecFiles.load([directory.url.path]) }
  }

  @Test func aFileThatIsNotUTF8IsRefused() throws {
    let directory = try TemporaryDirectory()
    let path = directory.path("latin1.yaml")
    try Data([0x6E, 0x61, 0x6D, 0x65, 0x3A, 0x20, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: path))
    #expect(
      throws: FormatError(
        file: path, field: "", message: "not UTF-8 text (a spec is a YAML document)")
    ) { try SpecFiles.text(at: path) }
  }

  @Test func theFirstBadSpecInPathOrderStopsTheRun() throws {
    let directory = try TemporaryDirectory()
    try directory.write("a.yaml", Self.spec(named: "a"))
    let bad = try directory.write(
      "b.yaml", Self.spec(named: "b").replacing("kind: ept", with: "kind: vmx"))
    try directory.write("c.yaml", "nestcheck-spec: 9\n")
    let request = CheckRequest(paths: [directory.url.path])
    #expect(throws: FormatError.self) { try request.perform() }
    do {
      _ = try request.perform()
    } catch {
      #expect(error.file == bad)
      #expect(error.field == "nested.kind")
    }
  }

  // MARK: - The whole request

  @Test func aCheckWritesTheTableAndBothReports() throws {
    let directory = try TemporaryDirectory()
    try directory.write("specs/one.yaml", Self.spec(named: "one"))
    let junit = directory.path("out/report.xml")
    let json = directory.path("out/report.json")
    let request = CheckRequest(paths: [directory.path("specs")], junit: junit, json: json)
    let response = try request.perform(engines: ScriptedEngines().engines)
    #expect(response.exitCode == 0)
    #expect(response.conclusion == nil)
    #expect(response.output.hasSuffix("gate: passed (exit 0): every verdict as expected\n"))
    #expect(response.files.map(\.path) == [junit, json])
    #expect(response.writeFiles() == nil)
    #expect(
      try XMLSummary(String(contentsOfFile: junit, encoding: .utf8)).elements["testcase"] == 1)
    let report = try JSON.parse(String(contentsOfFile: json, encoding: .utf8))
    #expect(try ReportSchema.load().validate(report) == [])
  }

  @Test func withEnginesUnavailableTheGateIsUndecided() throws {
    let response = try CheckRequest(paths: [repositoryPath("specs/nested")]).perform(
      engines: .unavailable)
    #expect(response.exitCode == 3)
    #expect(response.conclusion?.hasPrefix("gate: UNDECIDED (exit 3): ") == true)
  }

  @Test func validateOnlyListsTheSpecsAndRunsNothing() throws {
    let response = try CheckRequest(paths: [repositoryPath("specs")], validateOnly: true).perform()
    #expect(response.report == nil)
    #expect(response.exitCode == 0)
    #expect(response.output.hasPrefix("FILE "))
    #expect(response.output.contains("every spec is well-formed (nothing was run)"))
  }

  @Test func emittedStatesAreSnapshotsTheOtherCommandsRead() throws {
    let directory = try TemporaryDirectory()
    let response = try CheckRequest(
      paths: [repositoryPath("specs/shadow/aliased-tables.yaml")], validateOnly: true,
      emitStates: directory.path("states")
    ).perform()
    #expect(response.files.map(\.path) == [directory.path("states/aliased-tables.json")])
    #expect(response.writeFiles() == nil)
    let text = try String(
      contentsOfFile: directory.path("states/aliased-tables.json"), encoding: .utf8)
    let state = try MachineState.load(json: text)
    #expect(state == SpecLibraryTests.named("aliased-tables")?.state)
  }

  @Test func anUnwritableReportIsReportedWithItsPath() throws {
    let directory = try TemporaryDirectory()
    let blocker = try directory.write("file", "")
    let request = CheckRequest(
      paths: [repositoryPath("specs/nested/ept-4level.yaml")], json: blocker + "/report.json")
    let problem = try request.perform(engines: .unavailable).writeFiles()
    #expect(problem?.hasPrefix(blocker + "/report.json: cannot write: ") == true)
  }
}
