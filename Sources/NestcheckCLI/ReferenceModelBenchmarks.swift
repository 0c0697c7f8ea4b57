import Machine
import ReferenceModel
import Workloads

/// Benchmark B6 of DESIGN.md, on the reference model's concrete interpretation.
enum ReferenceModelBenchmarks {
  static var workloads: [BenchmarkWorkload] {
    [
      BenchmarkWorkload(
        name: "b6",
        summary: "reference model, concrete: 2D walks/s on B1 (4-level guest over 4-level EPT)",
        run: oracleWalks)
    ]
  }

  /// B6: the model's concrete interpretation translating B1's 10 million seeded random reads.
  static func oracleWalks(_ options: BenchmarkOptions) throws -> [BenchmarkFigure] {
    var figures: [BenchmarkFigure] = []
    var workload: WalkWorkload?
    let build = measure { workload = WalkWorkload(seed: options.seed) }
    guard let workload else { return [] }
    let model = try ConcreteModel(workload.state)
    figures.append(BenchmarkFigure(name: "build B1 state", value: build, unit: "s"))
    let count = options.scaled(10_000_000)
    let addresses = workload.addresses(count: count, seed: options.seed &+ 1)
    let access = Access(.read)
    var checksum: UInt64 = 0
    var references: UInt64 = 0
    let seconds = measure {
      for address in addresses {
        let t = model.translate(address, access)
        checksum &+= t.address
        references &+= t.referenceCount
      }
    }
    figures.append(
      BenchmarkFigure(name: "2D walks", value: Double(count) / seconds, unit: "walks/s"))
    figures.append(
      BenchmarkFigure(
        name: "memory references per walk", value: Double(references) / Double(count), unit: "refs")
    )
    figures.append(
      BenchmarkFigure(name: "checksum (low 16 bits)", value: Double(checksum & 0xFFFF), unit: ""))
    return figures
  }
}
