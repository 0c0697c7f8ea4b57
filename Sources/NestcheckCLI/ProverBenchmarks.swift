import FastMMU
import Foundation
import Machine
import Prover
import Workloads

/// Benchmark B5 of DESIGN.md: the full-address-space consistency proof of B3's final shadow
/// against guest-plus-EPT, at 2^10 … 2^18 mapped 4-KiB pages, with both cores.
enum ProverBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "b5",
        summary: "prover: seconds to prove the fast MMU's shadow after B3 at 2^10 ... 2^18 "
          + "4-KiB pages (shadow + guest + EPT), 2 jobs",
        run: proofScaling),
      BenchmarkWorkload(
        name: "b5-fixture",
        summary: "prover: B5 on the Workloads fixture's full shadow instead of the fast MMU's",
        run: fixtureScaling),
    ]
  }

  /// B5: for each size, B3 on the fast MMU (B1's state in shadow mode, every page read once),
  /// its exported shadow with the guest's host range, proved for every property but the entry
  /// lemmas (which do not depend on the state) with two jobs. The figure is the proof's wall
  /// time; making the state is reported apart.
  static func proofScaling(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    try scaling(options) { pages in try fastMMUShadow(pages: pages, seed: options.seed) }
  }

  /// B5 over ``ShadowMachine/init(pages:seed:)``: the same guest and EPT, the shadow composed
  /// by the fixture.
  static func fixtureScaling(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    try scaling(options) { pages in ShadowMachine(pages: pages, seed: options.seed).state }
  }

  static func scaling(_ options: BenchmarkOptions, state make: (Int) throws -> MachineState)
    throws -> [BenchmarkFigure]
  {
    var figures: [BenchmarkFigure] = []
    let top = options.scale >= 1 ? 18 : 14
    for exponent in stride(from: 10, through: top, by: 2) {
      let pages = 1 << exponent
      var state: MachineState?
      let build = try measure { state = try make(pages) }
      guard let state else { continue }
      var proverOptions = ProverOptions()
      proverOptions.properties = PropertyName.allCases.filter { $0 != .entryLemmas }
      proverOptions.jobs = 2
      var report: ProofReport?
      let seconds = try measure { report = try prove(state, options: proverOptions) }
      let verdicts = report?.results.map { result in
        switch result.verdict {
        case .proved: "proved"
        case .violated: "VIOLATED"
        case .unknown: "unknown"
        case .skipped: "skipped"
        }
      }
      let allProved = verdicts?.allSatisfy { $0 == "proved" } ?? false
      let outcome =
        allProved ? "all proved" : "NOT all proved: " + (verdicts ?? []).joined(separator: " ")
      let counts = report.map { r in
        "\(r.statistics.cells) cells, \(r.statistics.lanes) lanes, "
          + "\(r.statistics.folded) obligations folded, \(r.statistics.queries) Z3 queries"
      }
      figures += [
        BenchmarkFigure(name: "2^\(exponent) pages: make the state", value: build, unit: "s"),
        BenchmarkFigure(
          name: "2^\(exponent) pages: prove (\(outcome); \(counts ?? ""))", value: seconds,
          unit: "s"),
      ]
    }
    return figures
  }

  /// The fast MMU's shadow after B3's first pass over B1's state of `pages` pages, as a state
  /// snapshot, with the host range B1's EPT maps the guest into (host = guest + 4 GiB; the
  /// guest's frames lie below 2 GiB).
  static func fastMMUShadow(pages: Int, seed: UInt64) throws -> MachineState {
    let workload = WalkWorkload(pages: pages, seed: seed)
    let mmu: ShadowMMU
    do {
      mmu = try ShadowMMU(workload.state)
    } catch {
      throw CommandFailure("B5: the fast MMU refused B1's state: \(error)", exit: .internalError)
    }
    let access = Access(.read)
    for page in 0..<UInt64(pages) { _ = mmu.translate(workload.base + page << 12, access) }
    var state = mmu.snapshot()
    state.hostRanges = [HostRange(base: workload.hostOffset << 12, size: 0x8000_0000)]
    return state
  }
}
