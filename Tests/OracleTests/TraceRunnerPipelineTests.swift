import Foundation
import Machine
import Testing

@testable import Oracle

/// ``TraceRunner`` drives a ``PipeliningTarget`` in windows of operations, and nothing it
/// reports depends on that: on the example adapter and on the misbehaving one (AdapterBuild),
/// the windowed runner reaches the verdict, the failing index, the operations and the
/// observations of one operation at a time (``TraceRunner/pipelineWindow`` 1), and exports the
/// target's state after exactly the same operations.
@Suite(.enabled(if: AdapterBuild.compilerAvailable, "no C compiler to build the test adapters"))
struct TraceRunnerPipelineTests {
  static let generous: Duration = .seconds(20)
  static let short: Duration = .milliseconds(400)

  /// Runs `operations` from `state` through `target` with the oracle under nested semantics,
  /// `window` operations at a time, comparing memory and checking the state as asked.
  static func run(
    _ target: any Target, _ state: MachineState, _ operations: [TraceOperation], window: Int,
    memoryCheck: Int = 0, stateCheck: Int = 0
  ) -> TraceRun {
    var runner = TraceRunner(target: target, mode: .nested)
    runner.pipelineWindow = window
    runner.memoryCheckInterval = memoryCheck
    runner.stateCheckInterval = stateCheck
    runner.stateCheck = { _ in nil }
    return runner.run(state, operations)
  }

  /// The example adapter as a process.
  static func walker() throws -> ProcessTarget {
    ProcessTarget(executable: try AdapterBuild.built().processAdapter)
  }

  /// The misbehaving adapter in `mode`, misbehaving from operation `from` on.
  static func misbehaving(_ mode: String, from: Int, timeout: Duration = generous) throws
    -> ProcessTarget
  {
    ProcessTarget(
      ProcessTarget.Configuration(
        executable: try AdapterBuild.built().misbehaving, arguments: [mode, "\(from)"],
        operationTimeout: timeout, resetTimeout: generous))
  }

  /// A campaign's episode under nested paging: its machine and `count` generated operations.
  static func episode(seed: UInt64, count: Int) -> (MachineState, [TraceOperation]) {
    let machine = FuzzMachine(mode: .nested, seed: seed)
    var generator = TraceGenerator(machine: machine, mode: .nested, seed: seed)
    return (machine.state, (0..<count).map { _ in generator.next() })
  }

  /// The machine of AdapterTraces and a trace every operation of which the misbehaving
  /// adapter's `completed` answers correctly: flushes and guest stores to the mapped page.
  static let completedTrace: [TraceOperation] = (0..<100).map(completedOperation)
  static func completedOperation(_ i: Int) -> TraceOperation {
    let n = UInt64(i)
    if i % 2 == 0 { return .invlpg(linearAddress: AdapterTraces.page + (n << 12)) }
    return .writeGuest(guestPhysical: 0x5000 + n * 8, value: n)
  }
  static let machine = AdapterTraces.machine(nested: .ept)

  /// The verdict, operations and observations of `windowed` are those of `plain`.
  static func expectSame(_ windowed: TraceRun, _ plain: TraceRun) {
    #expect(windowed.verdict == plain.verdict)
    #expect(firstDifference(windowed.operations, plain.operations) == nil)
    #expect(firstDifference(windowed.observations, plain.observations) == nil)
  }

  /// Where two lists first differ (a short report, unlike `==` on hundreds of operations).
  static func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> String? {
    if let index = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
      return "at \(index): \(a[index]) vs \(b[index])"
    }
    return a.count == b.count ? nil : "\(a.count) vs \(b.count) elements"
  }

  @Test(arguments: [7, 64])
  func aCleanTraceIsObservedAndJudgedAsOneOperationAtATime(window: Int) throws {
    for seed: UInt64 in [1, 2, 3] {
      let (state, operations) = Self.episode(seed: seed, count: 400)
      let windowed = Self.run(
        try Self.walker(), state, operations, window: window, memoryCheck: 100)
      let plain = Self.run(try Self.walker(), state, operations, window: 1, memoryCheck: 100)
      #expect(windowed.verdict == .agreed, "seed \(seed)")
      #expect(Self.firstDifference(windowed.operations, operations) == nil, "seed \(seed)")
      Self.expectSame(windowed, plain)
    }
  }

  @Test(arguments: ["crash", "exit", "garbage", "not-observation", "unsupported"])
  func aTargetFailureInTheMiddleOfAWindowIsAtItsOwnOperation(mode: String) throws {
    let windowedTarget = try Self.misbehaving(mode, from: 38)
    let windowed = Self.run(windowedTarget, Self.machine, Self.completedTrace, window: 64)
    let plain = Self.run(
      try Self.misbehaving(mode, from: 38), Self.machine, Self.completedTrace, window: 1)
    guard case .targetFailed(let index, let error) = windowed.verdict else {
      Issue.record("expected a target failure, got \(windowed.verdict)")
      return
    }
    #expect(index == 37)
    if mode != "unsupported" { #expect(error.detail.contains("operation 38")) }
    #expect(windowed.operations == Array(Self.completedTrace[...37]))
    #expect(windowed.observations == Array(repeating: TraceObservation(.completed), count: 37))
    Self.expectSame(windowed, plain)
    // The answers sent ahead were all consumed or died with the process: the next run of the
    // same target starts in step and fails the same way.
    let again = Self.run(windowedTarget, Self.machine, Self.completedTrace, window: 64)
    Self.expectSame(again, windowed)
  }

  @Test func aHangInTheMiddleOfAWindowTimesOutAtItsOwnOperation() throws {
    let windowed = Self.run(
      try Self.misbehaving("hang", from: 38, timeout: Self.short), Self.machine,
      Self.completedTrace, window: 64)
    let plain = Self.run(
      try Self.misbehaving("hang", from: 38, timeout: Self.short), Self.machine,
      Self.completedTrace, window: 1)
    guard case .targetFailed(37, let error) = windowed.verdict else {
      Issue.record("expected a timeout at operation index 37, got \(windowed.verdict)")
      return
    }
    #expect(error.kind == .timedOut)
    #expect(error.detail.contains("operation 38"))
    Self.expectSame(windowed, plain)
  }

  @Test func aWrongAnswerInTheMiddleOfAWindowDivergesAtItsOwnOperation() throws {
    // The misbehaving adapter answers `completed` to everything, also to the read of the
    // mapped page at index 41: a divergence there, and nowhere before.
    var operations = Self.completedTrace
    operations[41] = AdapterTraces.access(AdapterTraces.page)
    let windowed = Self.run(
      try Self.misbehaving("none", from: 1), Self.machine, operations, window: 64)
    let plain = Self.run(try Self.misbehaving("none", from: 1), Self.machine, operations, window: 1)
    guard case .diverged(41, let divergence) = windowed.verdict else {
      Issue.record("expected a divergence at index 41, got \(windowed.verdict)")
      return
    }
    #expect(divergence.observed == TraceObservation(.completed))
    #expect(windowed.operations == Array(operations[...41]))
    #expect(windowed.observations.count == 42)
    Self.expectSame(windowed, plain)
  }

  @Test(arguments: [1, 64])
  func memoryAndStateChecksSeeTheTargetAfterExactlyTheirOperations(window: Int) throws {
    let (state, operations) = Self.episode(seed: 4, count: 203)
    let target = CountingTarget(try Self.walker())
    let run = Self.run(
      target, state, operations, window: window, memoryCheck: 10, stateCheck: 15)
    #expect(run.verdict == .agreed)
    var expected: [Int] = []
    for applied in 1...203 {
      if applied % 10 == 0 || applied == 203 { expected.append(applied) }
      if applied % 15 == 0 || applied == 203 { expected.append(applied) }
    }
    #expect(target.exports == expected)
  }

  @Test func aMemoryDisagreementFoundInAWindowIsAfterTheSameOperation() throws {
    let (state, operations) = Self.episode(seed: 5, count: 200)
    func run(window: Int) throws -> TraceRun {
      let target = CountingTarget(try Self.walker())
      target.corruptedExport = 3  // the export after operation 30
      return Self.run(target, state, operations, window: window, memoryCheck: 10)
    }
    let windowed = try run(window: 64)
    guard case .memoryDisagrees(29, _) = windowed.verdict else {
      Issue.record("expected a memory disagreement at index 29, got \(windowed.verdict)")
      return
    }
    #expect(windowed.operations == Array(operations[...29]))
    Self.expectSame(windowed, try run(window: 1))
  }
}

/// A process target that counts the operations applied since the last reset and notes that
/// count at every export; it can flip a bit of the memory in one export.
final class CountingTarget: PipeliningTarget, StateExporting {
  let inner: ProcessTarget
  /// Operations applied since the last reset.
  var applied = 0
  /// `applied` at each export, in order.
  var exports: [Int] = []
  /// The export (counting from 1) whose first memory word gets bit 52 flipped (none of
  /// the A/D bits, which the comparison may ignore).
  var corruptedExport: Int?

  init(_ inner: ProcessTarget) { self.inner = inner }

  var name: String { inner.name }

  func reset(to state: MachineState) throws(TargetError) {
    applied = 0
    try inner.reset(to: state)
  }

  func apply(_ operation: TraceOperation) throws(TargetError) -> TraceObservation {
    let observation = try inner.apply(operation)
    applied += 1
    return observation
  }

  func applyPipelined(_ operations: [TraceOperation]) -> PipelinedRun {
    let run = inner.applyPipelined(operations)
    applied += run.observations.count
    return run
  }

  func exportState() -> MachineState? {
    exports.append(applied)
    guard var state = inner.exportState() else { return nil }
    if exports.count == corruptedExport, let address = state.memory.words.keys.min() {
      state.memory[address] ^= 1 << 52
    }
    return state
  }
}
