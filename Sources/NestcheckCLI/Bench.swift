import ArgumentParser
import Foundation
import Machine

/// `nestcheck bench`: the project's benchmark command. It measures the workloads of DESIGN.md
/// and prints figures; it asserts nothing, and no test depends on its timings.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure the benchmark workloads of DESIGN.md (build with -c release).",
    discussion: """
      Workloads: \(BenchmarkRegistry.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")).

      Figures are wall-clock on this machine, single-threaded unless a workload says otherwise. \
      Run with `swift run -c release nestcheck bench`; a debug build is many times slower.
      """
  )

  @Argument(help: "Workloads to run, by name (default: all).")
  var workloads: [String] = []

  @Option(help: "Seed for every random choice a workload makes.")
  var seed: UInt64 = 1

  @Option(help: "Scale the operation counts by this factor (1.0 = the workload's definition).")
  var scale: Double = 1.0

  @Flag(help: "Print the figures as JSON.")
  var json = false

  func validate() throws {
    let known = Set(BenchmarkRegistry.all.map(\.name))
    for name in workloads where !known.contains(name) {
      throw ValidationError(
        "unknown workload '\(name)' (known: \(known.sorted().joined(separator: ", ")))")
    }
    guard scale > 0 else { throw ValidationError("--scale must be positive") }
  }

  func run() throws {
    let chosen = BenchmarkRegistry.all.filter {
      workloads.isEmpty ? $0.runsByDefault : workloads.contains($0.name)
    }
    let options = BenchmarkOptions(seed: seed, scale: scale)
    var results: [(BenchmarkWorkload, [BenchmarkFigure])] = []
    for workload in chosen {
      if !json { print("== \(workload.name): \(workload.summary)") }
      let figures = try workload.run(options)
      if !json {
        for figure in figures { print("  " + figure.line) }
      }
      results.append((workload, figures))
    }
    if json {
      let document = JSON.array(
        results.map { workload, figures in
          .object([
            "workload": .string(workload.name),
            "figures": .array(figures.map(\.json)),
          ])
        })
      print(document.text(pretty: true))
    }
  }
}

/// What every workload is given.
struct BenchmarkOptions {
  /// Seed for every random choice.
  var seed: UInt64
  /// Factor on operation counts.
  var scale: Double

  /// `count` scaled, at least 1.
  func scaled(_ count: Int) -> Int { max(1, Int(Double(count) * scale)) }
}

/// One measured figure.
struct BenchmarkFigure {
  /// What was measured.
  var name: String
  /// The value.
  var value: Double
  /// Its unit.
  var unit: String

  var line: String {
    let formatted =
      value >= 100 ? String(format: "%.0f", value) : String(format: "%.3g", value)
    return "\(name): \(formatted) \(unit)"
  }

  var json: JSON {
    .object(["name": .string(name), "value": JSON(.number(String(value))), "unit": .string(unit)])
  }
}

/// A named workload and how to measure it.
struct BenchmarkWorkload {
  /// Its name on the command line (b1 … b6, with suffixes for variants).
  var name: String
  /// One line saying what it measures.
  var summary: String
  /// Runs it and returns its figures.
  var run: (BenchmarkOptions) throws -> [BenchmarkFigure]
  /// Whether `nestcheck bench` without names runs it: false for a workload this build cannot
  /// run (the bug catalogue's exists in debug builds only), which still runs, or explains why
  /// it cannot, when named.
  var runsByDefault = true
}

/// Every workload, in order; each part of the project contributes its own list.
enum BenchmarkRegistry {
  static var all: [BenchmarkWorkload] {
    (ReferenceModelBenchmarks.workloads + FastMMUBenchmarks.workloads + ProverBenchmarks.workloads
      + OracleBenchmarks.workloads)
      .sorted { $0.name < $1.name } + DetectionBenchmarks.workloads
  }
}

/// Seconds elapsed while `body` runs, by the monotonic clock.
func measure(_ body: () throws -> Void) rethrows -> Double {
  let clock = ContinuousClock()
  let elapsed = try clock.measure(body)
  return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}
