import Foundation
import Machine
import Prover
import Testing
import Workloads

/// The prover (the reference model's symbolic walk, decomposed, decided by Z3) and the region
/// enumeration (independent plain Swift) are two decision procedures for the same properties;
/// on concrete states they must agree, correct and broken alike.
///
/// 1,000 seeded states: for the correct composition and for each planted inconsistency, 100
/// machines, spread evenly over 4-level and 5-level guests on EPT and NPT. Every machine has
/// room for its plant (``ShadowMachine/init(seed:geometry:room:)``), so every seed is compared.
@Suite("Prover and region enumeration agree")
struct DecisionAgreementTests {
  /// The properties both procedures decide.
  static let properties: [PropertyName] = [
    .soundness, .accessedDirty, .pageTableProtection, .isolation,
  ]
  /// Seeds per variant: 10 variants × 100 = 1,000 states (AGREE_SEEDS overrides, for runs
  /// wider or narrower than the suite's).
  static let seeds = Int(ProcessInfo.processInfo.environment["AGREE_SEEDS"] ?? "100") ?? 100
  static let variants: [ShadowMachine.Plant?] = [nil] + ShadowMachine.Plant.allCases

  /// The property each plant breaks. The hardware without NXE breaks fault classification,
  /// which only the prover decides: there the prover must find it, and on the properties both
  /// decide, both must find nothing.
  static let broken: [ShadowMachine.Plant: PropertyName] = [
    .wrongFrame: .soundness, .extraPermission: .soundness, .missingExecuteDisable: .soundness,
    .removedMapping: .soundness, .writablePageTable: .pageTableProtection,
    .outsideHostRanges: .isolation, .largePageOffset: .soundness,
    .accessedClear: .accessedDirty, .hardwareWithoutNXE: .faultClassification,
  ]

  @Test("At least 1,000 states are compared, every variant on every geometry")
  func coverage() {
    #expect(Self.variants.count * Self.seeds >= 1_000)
    #expect(Self.seeds >= 25 * ShadowMachine.Geometry.all.count)
    #expect(ShadowMachine.Plant.allCases.allSatisfy { Self.broken[$0] != nil })
  }

  @Test("Both procedures give the same verdict on every property", arguments: variants)
  func agreement(plant: ShadowMachine.Plant?) throws {
    let target = plant.flatMap { Self.broken[$0] }
    var options = ProverOptions()
    options.properties = Self.properties
    if let target, !Self.properties.contains(target) { options.properties?.append(target) }
    options.jobs = 1
    let name = plant?.rawValue ?? "correct"
    var compared = 0
    var perGeometry: [ShadowMachine.Geometry: Int] = [:]
    var violatedStates = 0
    for index in 0..<Self.seeds {
      let geometry = ShadowMachine.Geometry.all[index % ShadowMachine.Geometry.all.count]
      let seed = UInt64(index) &* 31 &+ 7
      let machine = ShadowMachine(seed: seed, geometry: geometry, room: plant)
      let planted = plant.map { machine.planted($0) } ?? machine.state
      guard let state = planted else {
        Issue.record("\(name) seed \(seed) (\(geometry)): no room for the plant")
        continue
      }
      let enumeration = try #require(RegionEnumeration(state), "\(geometry) not enumerable")
      let report = try prove(state, options: options)
      var violated: [PropertyName] = []
      for result in report.results {
        let proved = result.verdict == .proved
        if !proved { violated.append(result.property) }
        guard let expected = enumeration.verdicts[result.property] else { continue }
        #expect(
          proved == expected,
          """
          \(name) seed \(seed) (\(geometry)): \(result.property) prover \(result.verdict), \
          enumeration \(expected ? "holds" : "fails")
          """)
      }
      // A correct state violates nothing; a plant violates at least its own property (one
      // change may break more than one: a wrong frame can also land outside the ranges).
      if let target {
        #expect(
          violated.contains(target), "\(name) seed \(seed) (\(geometry)): \(target) proved")
      }
      if !violated.isEmpty { violatedStates += 1 }
      compared += 1
      perGeometry[geometry, default: 0] += 1
    }
    #expect(compared == Self.seeds)
    for geometry in ShadowMachine.Geometry.all {
      #expect(perGeometry[geometry, default: 0] >= Self.seeds / ShadowMachine.Geometry.all.count)
    }
    #expect(violatedStates == (plant == nil ? 0 : compared))
  }
}
