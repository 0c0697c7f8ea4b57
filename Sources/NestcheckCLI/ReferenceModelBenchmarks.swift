/// Benchmark B6 of DESIGN.md, on the reference model's concrete interpretation.
enum ReferenceModelBenchmarks {
  static var workloads: [BenchmarkWorkload] { [] }
}
