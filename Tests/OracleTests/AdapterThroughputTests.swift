import Foundation
import Machine
import Oracle
import Testing
import Workloads

/// Operations per second through each external path, with the example adapter: a measurement,
/// not a test of speed (nothing here asserts a time). It runs only when asked, in a release
/// build:
///
///     NESTCHECK_MEASURE_ADAPTERS=1 swift test -c release -Xswiftc -enable-testing \
///       --filter AdapterThroughput
@Suite(
  .serialized,
  .enabled(if: AdapterBuild.compilerAvailable, "no C compiler to build the example adapter"),
  .enabled(
    if: ProcessInfo.processInfo.environment["NESTCHECK_MEASURE_ADAPTERS"] != nil,
    "a measurement: set NESTCHECK_MEASURE_ADAPTERS=1 to run it"))
struct AdapterThroughputTests {
  /// A fuzzing-like mix over a random 4-level guest on 4-level EPT: mostly accesses, some
  /// guest and host stores and flushes.
  static func workload(count: Int) -> (MachineState, [TraceOperation]) {
    let machine = RandomMachine(
      shape: PagingShape(guestLevels: 4, nested: .ept(levels: 4)), seed: 7)
    var random = SeededGenerator(seed: 11)
    var operations: [TraceOperation] = []
    let table = machine.guestTables.first ?? 0x1000
    for _ in 0..<count {
      let address = machine.addresses[Int.random(in: 0..<machine.addresses.count, using: &random)]
      switch Int.random(in: 0..<10, using: &random) {
      case 0: operations.append(.writeGuest(guestPhysical: table | 0xFF8, value: 0))
      case 1: operations.append(.invlpg(linearAddress: address))
      case 2: operations.append(.access(linearAddress: address, Access(.write, user: true)))
      default: operations.append(.access(linearAddress: address, Access(.read)))
      }
    }
    return (machine.state, operations)
  }

  /// Applies the workload one operation at a time, or in pipelined runs of `run` operations
  /// (a fuzzing trace's length), and prints the rate.
  static func measure(_ target: any Target, _ label: String, run: Int? = nil) throws {
    let (state, operations) = Self.workload(count: 200_000)
    try target.reset(to: state)
    for operation in operations.prefix(1000) { _ = try target.apply(operation) }  // warm up
    let clock = ContinuousClock()
    let start = clock.now
    if let run {
      for chunk in stride(from: 0, to: operations.count, by: run) {
        let result = target.applyAll(Array(operations[chunk..<min(chunk + run, operations.count)]))
        if let error = result.error { throw error }
      }
    } else {
      for operation in operations { _ = try target.apply(operation) }
    }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(
      "\(label): \(Int(Double(operations.count) / seconds)) operations/s "
        + "(\(operations.count) in \(String(format: "%.2f", seconds)) s)")
  }

  @Test func throughProcess() throws {
    try Self.measure(
      ProcessTarget(executable: try AdapterBuild.built().processAdapter), "process adapter")
  }

  @Test func throughProcessPipelined() throws {
    try Self.measure(
      ProcessTarget(executable: try AdapterBuild.built().processAdapter),
      "process adapter, runs of 100", run: 100)
  }

  @Test func throughLibrary() throws {
    try Self.measure(
      try LibraryTarget(path: try AdapterBuild.built().libraryAdapter), "library adapter")
  }
}
