import Foundation
import Machine
import Prover
import Testing
import Workloads

/// The prover (the reference model's symbolic walk, decomposed, decided by Z3) and the region
/// enumeration (independent plain Swift) are two decision procedures for the same properties;
/// on concrete states they must agree, correct and broken alike.
///
/// 1,100 seeded states: for the correct composition and for each planted inconsistency, 110
/// machines, spread evenly over 4-level and 5-level guests on EPT and NPT. Every machine has
/// room for its plant (``ShadowMachine/init(seed:geometry:room:)``), so every seed is compared.
@Suite("Prover and region enumeration agree")
struct DecisionAgreementTests {
  static let properties: [PropertyName] = [
    .soundness, .accessedDirty, .pageTableProtection, .isolation,
  ]
  /// Seeds per variant: 10 variants × 110 = 1,100 states.
  static let seeds = Int(ProcessInfo.processInfo.environment["AGREE_SEEDS"] ?? "110") ?? 110
  static let variants: [ShadowMachine.Plant?] = [nil] + ShadowMachine.Plant.allCases

  /// The property a plant breaks, where the region enumeration decides it. The hardware
  /// without NXE breaks fault classification, which only the prover decides: on the other
  /// properties both must find nothing.
  static let broken: [ShadowMachine.Plant: PropertyName] = [
    .wrongFrame: .soundness, .extraPermission: .soundness, .missingExecuteDisable: .soundness,
    .removedMapping: .soundness, .writablePageTable: .pageTableProtection,
    .outsideHostRanges: .isolation, .largePageOffset: .soundness,
    .accessedClear: .accessedDirty,
  ]

  @Test("At least 1,000 states are compared, every variant on every geometry")
  func coverage() {
    #expect(Self.variants.count * Self.seeds >= 1_000)
    #expect(Self.seeds >= 25 * ShadowMachine.Geometry.all.count)
  }

  @Test("Both procedures give the same verdict on every property", arguments: variants)
  func agreement(plant: ShadowMachine.Plant?) throws {
    var options = ProverOptions()
    options.properties = Self.properties
    options.jobs = 1
    let name = plant?.rawValue ?? "correct"
    var compared = 0
    var perGeometry: [ShadowMachine.Geometry: Int] = [:]
    var violatedStates = 0
    for index in 0..<Self.seeds {
      let geometry = ShadowMachine.Geometry.all[index % ShadowMachine.Geometry.all.count]
      let seed = UInt64(index) &* 31 &+ 7
      let machine = ShadowMachine(seed: seed, geometry: geometry, room: plant)
      let state = try #require(
        plant.map { machine.planted($0) } ?? machine.state, "\(name) seed \(seed): no room")
      let enumeration = try #require(RegionEnumeration(state), "\(geometry) not enumerable")
      let report = try prove(state, options: options)
      var violated = false
      for result in report.results {
        let proved = result.verdict == .proved
        let expected = try #require(enumeration.verdicts[result.property])
        #expect(
          proved == expected,
          """
          \(name) seed \(seed) (\(geometry)): \(result.property) prover \(result.verdict), \
          enumeration \(expected ? "holds" : "fails")
          """)
        if !proved { violated = true }
        if let plant, Self.broken[plant] == result.property {
          #expect(!proved, "\(name) seed \(seed) (\(geometry)): \(result.property) proved")
        }
      }
      if violated { violatedStates += 1 }
      compared += 1
      perGeometry[geometry, default: 0] += 1
    }
    #expect(compared == Self.seeds)
    for geometry in ShadowMachine.Geometry.all {
      #expect(perGeometry[geometry, default: 0] >= Self.seeds / ShadowMachine.Geometry.all.count)
    }
    if let plant, Self.broken[plant] != nil {
      #expect(violatedStates == compared)
    } else {
      #expect(violatedStates == 0)
    }
  }
}
