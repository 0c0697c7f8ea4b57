import Machine
import Prover
import Testing
import Workloads

/// The properties of SEMANTICS §5.5 prove on correct shadows and fail, with a replayed
/// counterexample, on each kind of planted inconsistency.
@Suite("Shadow consistency proofs")
struct ShadowProofTests {
  static let linearProperties: [PropertyName] = [
    .soundness, .accessedDirty, .pageTableProtection, .isolation, .faultClassification,
  ]

  func options(_ properties: [PropertyName] = linearProperties) -> ProverOptions {
    var options = ProverOptions()
    options.properties = properties
    options.jobs = 1
    return options
  }

  @Test(
    "Every property proves on a correctly composed shadow, 4- and 5-level guests, EPT and NPT",
    arguments: ShadowMachine.Geometry.all, 0..<UInt64(4))
  func correctShadowProves(geometry: ShadowMachine.Geometry, seed: UInt64) throws {
    let machine = ShadowMachine(seed: seed, geometry: geometry)
    let report = try prove(machine.state, options: options())
    #expect(report.results.count == Self.linearProperties.count)
    for result in report.results {
      #expect(
        result.verdict == .proved, "\(geometry) seed \(seed): \(result.property) \(result.verdict)")
    }
  }

  /// The property each plant must break.
  static let expected: [ShadowMachine.Plant: PropertyName] = [
    .wrongFrame: .soundness, .extraPermission: .soundness, .missingExecuteDisable: .soundness,
    .removedMapping: .soundness, .writablePageTable: .pageTableProtection,
    .outsideHostRanges: .isolation, .largePageOffset: .soundness,
    .accessedClear: .accessedDirty, .hardwareWithoutNXE: .faultClassification,
  ]

  @Test(
    "Each planted inconsistency violates its property, on every geometry",
    arguments: ShadowMachine.Plant.allCases, ShadowMachine.Geometry.all)
  func plantIsFound(plant: ShadowMachine.Plant, geometry: ShadowMachine.Geometry) throws {
    let property = try #require(Self.expected[plant])
    for seed in 0..<UInt64(3) {
      let machine = ShadowMachine(seed: seed, geometry: geometry, room: plant)
      let broken = try #require(machine.planted(plant), "\(geometry) seed \(seed): no room")
      #expect(
        try prove(machine.state, options: options([property])).results.first?.verdict
          == .proved)
      let report = try prove(broken, options: options([property]))
      guard case .violated(let counterexample) = report.results.first?.verdict else {
        Issue.record("\(geometry) seed \(seed): \(plant) not found: \(report.results)")
        continue
      }
      #expect(counterexample.property == property)
      #expect(!counterexample.summary.isEmpty)
    }
  }

  @Test("Asking a state without shadow tables for a shadow property is bad input")
  func noShadowIsBadInput() {
    var state = ShadowMachine(seed: 1).state
    state.shadow = nil
    for property in PropertyName.allCases where property.needsShadow {
      #expect(throws: ProverError.self) { try prove(state, options: options([property])) }
    }
  }

  @Test("Without shadow tables, isolation and the entry lemmas are the default, and prove")
  func noShadowDefaults() throws {
    var state = ShadowMachine(seed: 1, geometry: .ept5).state
    state.shadow = nil
    var options = ProverOptions()
    options.jobs = 1
    let report = try prove(state, options: options)
    #expect(report.results.map(\.property) == [.isolation, .entryLemmas])
    #expect(report.results.allSatisfy { $0.verdict == .proved })
  }

  @Test("Without shadow tables, a host mapping outside the ranges violates isolation")
  func noShadowIsolationViolated() throws {
    let machine = ShadowMachine(seed: 4, geometry: .npt4, room: .outsideHostRanges)
    var state = try #require(machine.planted(.outsideHostRanges))
    state.shadow = nil
    let report = try prove(state, options: options([.isolation]))
    guard case .violated(let counterexample) = report.results.first?.verdict else {
      Issue.record("isolation not violated: \(report.results)")
      return
    }
    #expect(counterexample.guestPhysical)
  }
}

/// The B5 construction at small scale: proved as built, and a single wrong frame among
/// thousands of leaves is found.
@Suite("Shadow proofs at scale")
struct ShadowScaleTests {
  @Test("B5's full shadow of 4,096 pages proves, and one wrong frame in it is found")
  func benchmarkShapeProvesAndBreaks() throws {
    let machine = ShadowMachine(pages: 4096, seed: 3)
    var options = ProverOptions()
    options.properties = [.soundness, .isolation]
    let report = try prove(machine.state, options: options)
    #expect(report.results.allSatisfy { $0.verdict == .proved })
    let broken = try #require(machine.planted(.wrongFrame))
    let again = try prove(broken, options: options)
    guard case .violated(let c) = again.results.first?.verdict else {
      Issue.record("wrong frame not found: \(again.results)")
      return
    }
    #expect(c.property == .soundness)
  }
}
