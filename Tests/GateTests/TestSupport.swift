import FastMMU
import Foundation
import Machine
import Testing

@testable import Gate

/// The package's root directory, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A path under the package root.
func repositoryPath(_ relative: String) -> String {
  packageRoot.appendingPathComponent(relative).path
}

/// The smallest spec that builds: one guest page over EPT, isolation only. Cases edit a line.
let minimalSpec = """
  nestcheck-spec: 1
  name: t
  guest: { paging: 4-level }
  nested: { kind: ept }
  guest-mappings:
    - { gva: 0x7f0000000000, gpa: 0x100000, rights: [write, user] }
  host-mappings:
    - { gpa: 0x0, hpa: 0x1_0000_0000, size: 2 MiB, page: 2 MiB, rights: [read, write, exec] }
  host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]
  properties: [isolation]
  expect: holds

  """

/// Parses and builds spec text named `t.yaml`.
func buildSpec(_ text: String, file: String = "t.yaml") throws(FormatError) -> BuiltSpec {
  try Spec.parse(yaml: text, file: file).build()
}

/// The error parsing or building `text` gives, as the command line prints it, or `nil`.
func specError(_ text: String) -> String? {
  do {
    _ = try buildSpec(text)
    return nil
  } catch {
    return error.description
  }
}

/// A fresh directory for files a test writes, removed when the value is.
final class TemporaryDirectory {
  let url: URL

  init() throws {
    url = FileManager.default.temporaryDirectory.appendingPathComponent(
      "nestcheck-gate-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(at: url) }

  /// Writes `text` to `name` (directories made as needed) and returns the path.
  @discardableResult
  func write(_ name: String, _ text: String) throws -> String {
    let file = url.appendingPathComponent(name)
    try FileManager.default.createDirectory(
      at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: file)
    return file.path
  }

  /// The path of `name` inside the directory.
  func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Engines that answer from a table, for testing the runner and the reports without a prover.
struct ScriptedEngines: PropertyProver, ShadowBuilder, DifferentialFuzzer {
  /// The verdict for each check name; missing names hold.
  var verdicts: [String: EngineOutcome] = [:]
  /// What building a shadow gives; `nil` builds it (returns the state with a shadow root).
  var shadowFailure: EngineOutcome?

  func prove(
    _ property: Property, in state: MachineState, budget: ProofBudget, context: CheckContext
  ) -> EngineOutcome {
    if property.needsShadow && state.shadow == nil {
      return EngineOutcome(.error, "no shadow in the state")
    }
    return verdicts[context.check] ?? EngineOutcome(.holds, "proved")
  }

  func buildShadow(
    _ recipe: ShadowRecipe, from state: MachineState, context: CheckContext
  ) -> ShadowBuildResult {
    if let shadowFailure { return .notBuilt(shadowFailure) }
    var built = state
    built.shadow = ShadowPaging(cr3: 0x7000_0000, guest: state.guest)
    return .built(built)
  }

  func fuzz(
    _ mode: MMUMode, from spec: BuiltSpec, budget: FuzzBudget, context: CheckContext
  ) -> EngineOutcome {
    verdicts[context.check]
      ?? EngineOutcome(.holds, "\(budget.operations) operations, no divergence")
  }

  var engines: Engines { Engines(prover: self, shadowBuilder: self, fuzzer: self) }
}
