import Foundation
import Machine
import Testing

@testable import NestcheckCLI

/// The committed example states are what ExampleStates.swift defines, and they load.
@Suite struct ExampleStateTests {
  @Test(
    "Every example state is the file ExampleStates writes",
    arguments: ExampleStates.all.map(\.name))
  func exampleIsCurrent(name: String) throws {
    let expected =
      try #require(ExampleStates.all.first { $0.name == name }).json.text(pretty: true)
      + "\n"
    let path = ExampleStates.path(name)
    if ProcessInfo.processInfo.environment["NESTCHECK_WRITE_EXAMPLES"] == "1" {
      try FileManager.default.createDirectory(
        at: ExampleStates.directory, withIntermediateDirectories: true)
      try expected.write(toFile: path, atomically: true, encoding: .utf8)
    }
    let committed = try String(contentsOfFile: path, encoding: .utf8)
    #expect(committed == expected, "run the tests with NESTCHECK_WRITE_EXAMPLES=1 to rewrite")
  }

  @Test(
    "Every example state loads and the model accepts it", arguments: ExampleStates.all.map(\.name))
  func exampleLoads(name: String) throws {
    let state = try MachineState.load(file: ExampleStates.path(name))
    #expect(!state.memory.words.isEmpty)
  }
}
