import Machine
import Oracle
import Testing

/// The operation generator (issue 5, item 3): seedable and deterministic, and its mix draws
/// every class of operation the mode allows.
@Suite struct GeneratorTests {
  /// `count` operations of the episode `seed` in `mode`.
  static func operations(_ mode: OracleMode, seed: UInt64, count: Int = 400) -> [TraceOperation] {
    let machine = FuzzMachine(mode: mode, seed: seed)
    var generator = TraceGenerator(machine: machine, mode: mode, seed: seed)
    return (0..<count).map { _ in generator.next() }
  }

  /// The ``OperationClass`` an operation was drawn as, told apart by what it touches: host
  /// stores into the nested tables (between the nested-table area and the host offset of guest
  /// frames) from hypervisor stores into guest memory, stores into guest tables from stores
  /// into data frames.
  static func operationClass(_ operation: TraceOperation, _ machine: FuzzMachine)
    -> OperationClass
  {
    switch operation {
    case .access: return .access
    case .writeGuest(let gpa, _):
      return machine.dataFrames.contains(gpa & ~0xFFF) ? .guestDataWrite : .guestEntryWrite
    case .writeHost(let hpa, _):
      return hpa >= FuzzMachine.nestedTableArea && hpa < FuzzMachine.hostOffset
        ? .nestedEntryWrite : .hostGuestWrite
    case .writeRegister(let register, _):
      switch register {
      case .cr3: return .cr3Write
      case .vpid: return .vpidWrite
      case .nestedRoot: return .nestedRootWrite
      default: return .controlToggle
      }
    case .invlpg: return .invlpg
    case .invpcid: return .invpcid
    case .invept: return .invept
    case .invvpid: return .invvpid
    case .paravirtualBatch: return .batch
    }
  }

  @Test("the same seed gives the same operations", arguments: OracleMode.allCases)
  func sameSeedSameOperations(_ mode: OracleMode) {
    for seed: UInt64 in [1, 42, 0xDEAD_BEEF] {
      #expect(Self.operations(mode, seed: seed) == Self.operations(mode, seed: seed))
    }
  }

  @Test("different seeds give different operations", arguments: OracleMode.allCases)
  func differentSeedsDiffer(_ mode: OracleMode) {
    let runs = (UInt64(1)...4).map { Self.operations(mode, seed: $0) }
    for i in runs.indices {
      for j in runs.indices where i < j {
        #expect(runs[i] != runs[j], "seeds \(i + 1) and \(j + 1)")
      }
    }
  }

  /// Over a few episodes the mix draws every class of positive weight and none of weight 0.
  /// A ``OperationClass/revisit`` probe is made of other classes' operations, so it is not
  /// told apart here; the probe test below checks its shape.
  @Test(
    "over a few episodes the standard mix draws every class of positive weight",
    arguments: OracleMode.allCases)
  func mixDrawsEveryClass(_ mode: OracleMode) {
    let mix = OperationMix.standard(mode)
    let expected = Set(OperationClass.allCases.filter { (mix.weights[$0] ?? 0) > 0 })
      .subtracting([.revisit])
    var seen: Set<OperationClass> = []
    for seed in UInt64(1)...40 where seen != expected {
      let machine = FuzzMachine(mode: mode, seed: seed)
      var generator = TraceGenerator(machine: machine, mode: mode, seed: seed)
      for _ in 0..<400 { seen.insert(Self.operationClass(generator.next(), machine)) }
    }
    #expect(seen.isSuperset(of: expected), "never drawn: \(expected.subtracting(seen))")
    #expect(seen.isSubset(of: expected), "drawn with weight 0: \(seen.subtracting(expected))")
  }

  @Test("a class of weight 0 is never drawn, a mix of one class draws only it")
  func weightsAreObeyed() {
    let machine = FuzzMachine(mode: .nested, seed: 3)
    var generator = TraceGenerator(
      machine: machine, mode: .nested, seed: 3, mix: OperationMix([.invlpg: 1]))
    for _ in 0..<200 {
      #expect(Self.operationClass(generator.next(), machine) == .invlpg)
    }
  }

  @Test("a revisit probe repeats its access after a change and perhaps a flush")
  func revisitRepeatsTheAccess() {
    for mode in OracleMode.allCases {
      let machine = FuzzMachine(mode: mode, seed: 11)
      var generator = TraceGenerator(
        machine: machine, mode: mode, seed: 11, mix: OperationMix([.revisit: 1]))
      var changed = 0
      for _ in 0..<30 {
        let first = generator.next()
        guard case .access = first else {
          Issue.record("\(mode): a probe starts with an access, not \(first)")
          return
        }
        var rest: [TraceOperation] = []
        for _ in 0..<4 {
          let next = generator.next()
          rest.append(next)
          if next == first { break }
        }
        #expect(rest.last == first, "\(mode): the probe ends with the same access")
        #expect((1...3).contains(rest.count), "\(mode): a change, perhaps a flush, the access")
        if rest.count > 1 { changed += 1 }
      }
      #expect(changed > 10, "\(mode): most probes change something between the accesses")
    }
  }
}
