import Foundation
import Machine
import Prover
import Workloads

/// Benchmark B5 of DESIGN.md: the full-address-space consistency proof of a shadow against
/// guest-plus-EPT, at 2^10 … 2^18 mapped 4-KiB pages, with both cores.
enum ProverBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "b5",
        summary: "prover: seconds to prove a full shadow of 2^10 ... 2^18 4-KiB pages "
          + "(shadow + guest + EPT), 2 jobs",
        run: proofScaling)
    ]
  }

  /// B5: for each size, build B3's final state (``ShadowMachine/init(pages:seed:)``) and prove
  /// every linear-address property plus host isolation with two jobs; the figure is the proof's
  /// wall time (building the state is reported apart).
  static func proofScaling(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    var figures: [BenchmarkFigure] = []
    let top = options.scale >= 1 ? 18 : 14
    for exponent in stride(from: 10, through: top, by: 2) {
      let pages = 1 << exponent
      var machine: ShadowMachine?
      let build = measure { machine = ShadowMachine(pages: pages, seed: options.seed) }
      guard let machine else { continue }
      var proverOptions = ProverOptions()
      proverOptions.properties = PropertyName.allCases.filter { $0 != .entryLemmas }
      proverOptions.jobs = 2
      var report: ProofReport?
      let seconds = try measure { report = try prove(machine.state, options: proverOptions) }
      let proved = report?.results.allSatisfy { $0.verdict == .proved } ?? false
      figures.append(
        BenchmarkFigure(name: "2^\(exponent) pages: build state", value: build, unit: "s"))
      figures.append(
        BenchmarkFigure(
          name: "2^\(exponent) pages: prove (\(proved ? "all proved" : "NOT all proved"), "
            + "\(report?.statistics.queries ?? 0) Z3 queries, "
            + "\(report?.statistics.lanes ?? 0) lanes)",
          value: seconds, unit: "s"))
    }
    return figures
  }
}
