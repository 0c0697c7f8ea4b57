import Foundation
import Oracle

#if DEBUG
  import FastMMU
#endif

/// `nestcheck bench detection`: operations to detection for every catalogued bug (issue 5,
/// item 6; docs/bug-catalogue.md). Each bug's fixed hunt (``BugHunt/catalogue(_:)``) runs: the
/// fast MMU built with the bug, fuzzed in the hunt's mode from its seed, the failure shrunk.
/// One figure per bug: the operations run up to and including the failing one, with the mode,
/// the seed and the length of the shrunk reproducer in its name. The catalogue exists in debug
/// builds only; a release build says so and exits 2.
enum DetectionBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "detection",
        summary: "operations until the fuzzer detects each catalogued bug (debug builds only)",
        run: run, runsByDefault: hasCatalogue)
    ]
  }

  /// The catalogue is compiled into debug builds only.
  static var hasCatalogue: Bool {
    #if DEBUG
      true
    #else
      false
    #endif
  }

  static func run(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    #if DEBUG
      var figures: [BenchmarkFigure] = []
      for bug in InjectedBug.allCases {
        let hunt = BugHunt.catalogue(bug)
        let report = hunt.run()
        let seed = "0x" + String(hunt.seed, radix: 16)
        let focus = hunt.focus.map { ", focus \($0.rawValue)" } ?? ""
        let label = "\(bug.rawValue) [\(hunt.mode), seed \(seed)\(focus)"
        guard let finding = report.findings.first else {
          figures.append(
            BenchmarkFigure(
              name: label + "] NOT FOUND within", value: Double(report.operations),
              unit: "ops"))
          continue
        }
        let shrunk = (finding.shrunk ?? finding.replay).operations.count
        let kind = finding.replay.failure?.kind ?? "?"
        figures.append(
          BenchmarkFigure(
            name: label + ", \(kind), shrunk to \(shrunk) ops]",
            value: Double(finding.operationsBefore + 1), unit: "ops to detection"))
      }
      return figures
    #else
      throw CommandFailure(
        "bench detection: the bug catalogue exists only in debug builds (NESTCHECK_BUGS); "
          + "run it with `swift run nestcheck bench detection`",
        exit: .badInput)
    #endif
  }
}
