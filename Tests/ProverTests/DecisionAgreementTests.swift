import Machine
import Prover
import Testing
import Workloads

/// The prover (the reference model's symbolic walk, decomposed, decided by Z3) and the region
/// enumeration (independent plain Swift) are two decision procedures for the same properties;
/// on concrete states they must agree, correct and broken alike.
@Suite("Prover and region enumeration agree")
struct DecisionAgreementTests {
  static let properties: [PropertyName] = [
    .soundness, .accessedDirty, .pageTableProtection, .isolation,
  ]
  /// Seeds per variant (the correct machine and each plant): 10 variants × 110 = 1,100 states.
  static let seeds = 110

  static let variants: [ShadowMachine.Plant?] = [nil] + ShadowMachine.Plant.allCases

  @Test("Both procedures give the same verdict on every property", arguments: variants)
  func agreement(plant: ShadowMachine.Plant?) throws {
    var options = ProverOptions()
    options.properties = Self.properties
    options.jobs = 1
    var compared = 0
    var violations = 0
    for seed in 0..<UInt64(Self.seeds) {
      let machine = ShadowMachine(seed: seed &* 31 &+ 7)
      guard let state = plant.map({ machine.planted($0) }) ?? machine.state,
        let enumeration = RegionEnumeration(state)
      else { continue }
      let report = try prove(state, options: options)
      for result in report.results {
        let proved = result.verdict == .proved
        guard let expected = enumeration.verdicts[result.property] else { continue }
        #expect(
          proved == expected,
          """
          \(plant?.rawValue ?? "correct") seed \(seed): \(result.property) prover \
          \(result.verdict), enumeration \(expected ? "holds" : "fails")
          """)
        if !proved { violations += 1 }
      }
      compared += 1
    }
    #expect(compared > 0, "no machine had room for \(plant?.rawValue ?? "correct")")
    if plant == nil { #expect(violations == 0) } else { #expect(violations > 0) }
  }
}
