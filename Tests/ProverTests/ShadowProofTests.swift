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

  @Test("Every property proves on a correctly composed shadow", arguments: 0..<UInt64(12))
  func correctShadowProves(seed: UInt64) throws {
    let machine = ShadowMachine(seed: seed)
    let report = try prove(machine.state, options: options())
    for result in report.results {
      #expect(result.verdict == .proved, "seed \(seed): \(result.property) \(result.verdict)")
    }
  }

  /// The property each plant must break.
  static let expected: [ShadowMachine.Plant: PropertyName] = [
    .wrongFrame: .soundness, .extraPermission: .soundness, .missingExecuteDisable: .soundness,
    .removedMapping: .soundness, .writablePageTable: .pageTableProtection,
    .outsideHostRanges: .isolation, .largePageOffset: .soundness,
    .accessedClear: .accessedDirty, .hardwareWithoutNXE: .faultClassification,
  ]

  @Test("Each planted inconsistency violates its property", arguments: ShadowMachine.Plant.allCases)
  func plantIsFound(plant: ShadowMachine.Plant) throws {
    var found = 0
    for seed in 0..<UInt64(40) where found < 3 {
      guard let broken = ShadowMachine(seed: seed).planted(plant),
        let property = Self.expected[plant]
      else { continue }
      let report = try prove(broken, options: options([property]))
      guard case .violated(let counterexample) = report.results.first?.verdict else {
        Issue.record("seed \(seed): \(plant) not found: \(String(describing: report.results))")
        return
      }
      #expect(counterexample.property == property)
      found += 1
    }
    #expect(found > 0, "no machine had room for \(plant)")
  }

  @Test("A state without shadow tables is bad input")
  func noShadowIsBadInput() {
    var state = ShadowMachine(seed: 1).state
    state.shadow = nil
    #expect(throws: ProverError.self) { try prove(state, options: options()) }
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
