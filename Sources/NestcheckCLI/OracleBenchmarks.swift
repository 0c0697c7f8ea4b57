import FastMMU
import Foundation
import Machine
import Oracle

/// Benchmark B4 of DESIGN.md: differential fuzzing with the oracle judging every operation.
enum OracleBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "b4",
        summary: "fuzzing, fast MMU in process, every access checked: operations/s per mode",
        run: inProcess),
      BenchmarkWorkload(
        name: "b4-process",
        summary: "fuzzing through the process adapter (examples/adapter-c, nested): operations/s",
        run: throughProcess),
    ]
  }

  /// The campaign B4 runs: the default mix and episode length, no shrinking (nothing fails on
  /// the correct fast MMU), memory compared every `memoryCheck` operations (0: never).
  static func campaign(
    _ target: any Target, mode: OracleMode, operations: Int, seed: UInt64, memoryCheck: Int
  ) -> CampaignReport {
    var configuration = CampaignConfiguration(mode: mode)
    configuration.seed = seed
    configuration.operations = operations
    configuration.memoryCheckInterval = memoryCheck
    configuration.shrink = false
    configuration.maxFailures = 0
    return Campaign(target: target, configuration: configuration).run()
  }

  /// Per mode: a 500,000-operation campaign against the fast MMU, the oracle judging every
  /// operation; once with no memory comparison, once with `nestcheck fuzz`'s default (every
  /// 100 operations).
  static func inProcess(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    var figures: [BenchmarkFigure] = []
    let count = options.scaled(500_000)
    for mode in [MMUMode.nested, .shadow, .paravirtual] {
      let target = FastMMUTarget(mode: mode)
      for memoryCheck in [0, 100] {
        let report = campaign(
          target, mode: target.oracleMode, operations: count, seed: options.seed,
          memoryCheck: memoryCheck)
        let label =
          memoryCheck == 0 ? "\(mode.rawValue)" : "\(mode.rawValue), memory compared every 100"
        figures.append(
          BenchmarkFigure(
            name: label, value: Double(report.operations) / report.seconds, unit: "ops/s"))
        if !report.findings.isEmpty {
          figures.append(
            BenchmarkFigure(
              name: "\(label): divergences (a defect)", value: Double(report.findings.count),
              unit: "failures"))
        }
      }
    }
    return figures
  }

  /// The example C adapter as a process, built with `cc` into a temporary directory, fuzzed
  /// under nested semantics with no memory comparison.
  static func throughProcess(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    let executable = try buildExampleAdapter()
    defer {
      try? FileManager.default.removeItem(
        atPath: (executable as NSString).deletingLastPathComponent)
    }
    let target = ProcessTarget(executable: executable, operationTimeout: .seconds(5))
    defer { target.stop() }
    let report = campaign(
      target, mode: .nested, operations: options.scaled(100_000), seed: options.seed,
      memoryCheck: 0)
    var figures = [
      BenchmarkFigure(
        name: "process adapter, nested", value: Double(report.operations) / report.seconds,
        unit: "ops/s")
    ]
    if !report.findings.isEmpty {
      figures.append(
        BenchmarkFigure(
          name: "process adapter: failures", value: Double(report.findings.count),
          unit: "failures"))
    }
    return figures
  }

  /// Compiles examples/adapter-c's process adapter; throws when there is no compiler or the
  /// sources are not where this build's sources say they are.
  static func buildExampleAdapter() throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent()
    let example = root.appendingPathComponent("examples/adapter-c")
    let header = root.appendingPathComponent("adapters/include")
    guard FileManager.default.fileExists(atPath: example.appendingPathComponent("walker.c").path)
    else {
      throw CommandFailure(
        "b4-process: examples/adapter-c not found under \(root.path)", exit: .badInput)
    }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "nestcheck-b4-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let output = directory.appendingPathComponent("walker-adapter").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
      [
        "cc", "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-I", header.path, "-o", output,
      ]
      + ["adapter_process.c", "walker.c", "json.c"].map {
        example.appendingPathComponent($0).path
      }
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw CommandFailure("b4-process: cannot compile the example adapter", exit: .badInput)
    }
    return output
  }
}
