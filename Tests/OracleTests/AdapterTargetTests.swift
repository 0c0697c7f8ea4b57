import Foundation
import Machine
import Testing

@testable import Oracle

/// The example adapter of examples/adapter-c, built by the test, driven through both external
/// paths: as a process speaking the JSON Lines protocol and as a shared library with the C ABI.
/// Each hand-written trace must be observed exactly as derived by hand (AdapterTraces).
@Suite(.enabled(if: AdapterBuild.compilerAvailable, "no C compiler to build the example adapter"))
struct AdapterTargetTests {
  enum Path: String, CaseIterable, CustomStringConvertible {
    case process, library
    var description: String { rawValue }
  }

  static func target(_ path: Path) throws -> any Target {
    let products = try AdapterBuild.built()
    switch path {
    case .process: return ProcessTarget(executable: products.processAdapter)
    case .library: return try LibraryTarget(path: products.libraryAdapter)
    }
  }

  static func run(_ steps: [AdapterTraces.Step], on target: any Target) throws {
    for step in steps {
      let observed = try target.apply(step.operation)
      #expect(observed == step.expected, "after \(step)")
    }
  }

  @Test(arguments: Path.allCases)
  func theEPTTraceIsObservedAsDerivedByHand(path: Path) throws {
    let target = try Self.target(path)
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    try Self.run(AdapterTraces.ept, on: target)
  }

  @Test(arguments: Path.allCases)
  func theNPTTraceIsObservedAsDerivedByHand(path: Path) throws {
    let target = try Self.target(path)
    try target.reset(to: AdapterTraces.machine(nested: .npt))
    try Self.run(AdapterTraces.npt, on: target)
  }

  @Test(arguments: Path.allCases)
  func aPipelinedRunObservesTheSameAsOneOperationAtATime(path: Path) throws {
    let target = try Self.target(path)
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    let run = target.applyAll(AdapterTraces.ept.map(\.operation))
    #expect(run.error == nil)
    #expect(run.observations == AdapterTraces.ept.map(\.expected))
  }

  @Test(arguments: Path.allCases)
  func aResetForgetsEverythingTheTraceChanged(path: Path) throws {
    let target = try Self.target(path)
    let machine = AdapterTraces.machine(nested: .ept)
    let read = AdapterTraces.access(AdapterTraces.page)
    try target.reset(to: machine)
    _ = try target.apply(.writeHost(hostPhysical: 0x4028, value: 0))  // unmap the page
    #expect(try target.apply(read).result != AdapterTraces.translated(0x10_5000))
    try target.reset(to: machine)
    #expect(try target.apply(read).result == AdapterTraces.translated(0x10_5000))
  }

  @Test(arguments: Path.allCases)
  func aStateOutsideTheCapabilitiesIsRefusedNotApplied(path: Path) throws {
    let target = try Self.target(path)
    var machine = AdapterTraces.machine(nested: .ept)
    machine.guest.cr0 = 0x8000_0011  // paging without CR4.PAE …
    machine.guest.cr4 = 0  // … is 32-bit paging, which the example does not implement
    #expect {
      try target.reset(to: machine)
    } throws: { error in
      (error as? TargetError)?.kind == .setupRefused
    }
    #expect(throws: TargetError.self) { try target.apply(AdapterTraces.access(0)) }
  }

  @Test func theHandshakeDescribesTheExample() throws {
    let target = ProcessTarget(executable: try AdapterBuild.built().processAdapter)
    let description = try target.describe()
    #expect(description.name == "example-c-walker")
    #expect(description.nestedKinds == [.none, .ept, .npt])
    #expect(description.guestLevels == [0, 4, 5])
    #expect(Set(TraceOperation.names) == description.operations)
    let library = try LibraryTarget(path: try AdapterBuild.built().libraryAdapter)
    #expect(library.adapter == description)
  }

  @Test func theProcessIsKeptAcrossResetsAndStoppedOnRequest() throws {
    let target = ProcessTarget(executable: try AdapterBuild.built().processAdapter)
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    let first = try #require(target.processID)
    try target.reset(to: AdapterTraces.machine(nested: .npt))
    #expect(target.processID == first)
    target.stop()
    #expect(target.processID == nil)
    #expect(kill(first, 0) != 0)  // reaped: the ID no longer names a process of ours
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    #expect(target.processID != nil)
  }

  @Test func aFreshProcessPerResetIsAnOption() throws {
    let target = ProcessTarget(
      ProcessTarget.Configuration(
        executable: try AdapterBuild.built().processAdapter, freshProcessPerReset: true))
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    let first = try #require(target.processID)
    try target.reset(to: AdapterTraces.machine(nested: .ept))
    #expect(target.processID != first)
  }

  /// The C layout the compiler gives the ABI's structs is the one nestcheck writes and reads.
  @Test func theABILayoutMatchesTheHeader() throws {
    let output = try AdapterBuild.run(try AdapterBuild.built().layoutPrinter, [])
    var offsets: [String: Int] = [:]
    for line in output.split(separator: "\n") {
      let parts = line.split(separator: " ")
      if parts.count == 2, let offset = Int(parts[1]) { offsets[String(parts[0])] = offset }
    }
    for (index, name) in AdapterABI.stateNames.enumerated() {
      #expect(offsets["nestcheck_state.\(name)"] == 8 * index, "nestcheck_state.\(name)")
    }
    #expect(AdapterABI.stateNames.count == AdapterABI.State.allCases.count)
    for (index, name) in AdapterABI.operationNames.enumerated() {
      #expect(offsets["nestcheck_operation.\(name)"] == 8 * index, "nestcheck_operation.\(name)")
    }
    #expect(AdapterABI.operationNames.count == AdapterABI.Operation.allCases.count)
    #expect(offsets["nestcheck_observation.values"] == 8 * AdapterABI.Observation.values)
    #expect(offsets["nestcheck_observation.exit_count"] == 8 * AdapterABI.Observation.exitCount)
    #expect(offsets["nestcheck_observation.exits"] == 8 * AdapterABI.Observation.exits)
    #expect(offsets["sizeof.observation"] == 8 * AdapterABI.Observation.words)
    #expect(offsets["nestcheck_update.preserve_accessed_dirty"] == 16)
    #expect(offsets["nestcheck_word.value"] == 8)
  }
}
