/// Benchmarks B1–B3 of DESIGN.md, on the fast MMU.
enum FastMMUBenchmarks {
  static var workloads: [BenchmarkWorkload] { [] }
}
