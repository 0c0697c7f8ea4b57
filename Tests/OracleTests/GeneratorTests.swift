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

/// The shadow-structure probes (``OperationClass/aliasRevisit``,
/// ``OperationClass/writeProtectWindow``) and the focus that draws them.
@Suite struct ShadowStructureProbeTests {
  /// The operations of `count` probes of `kind` from the shadow episode `seed`, each cut where
  /// the next probe starts (a probe starts with its first access; an access repeated ends it).
  static func probes(_ kind: OperationClass, seed: UInt64, count: Int) -> [[TraceOperation]] {
    let machine = FuzzMachine(mode: .shadow, seed: seed)
    var generator = TraceGenerator(
      machine: machine, mode: .shadow, seed: seed, mix: OperationMix([kind: 1]))
    var result: [[TraceOperation]] = []
    for _ in 0..<count {
      var probe = [generator.next()]
      while generator.hasPending { probe.append(generator.next()) }
      result.append(probe)
    }
    return result
  }

  @Test("only the shadow-structure focus draws the shadow-structure probes")
  func onlyTheirFocusDrawsThem() {
    for mode in OracleMode.allCases {
      var mixes = [OperationMix.standard(mode)]
      mixes += OperationMix.Focus.allCases.filter { $0 != .shadowStructure }.map {
        OperationMix.focused($0, mode)
      }
      for mix in mixes {
        #expect((mix.weights[.aliasRevisit] ?? 0) == 0)
        #expect((mix.weights[.writeProtectWindow] ?? 0) == 0)
      }
      let focused = OperationMix.focused(.shadowStructure, mode)
      #expect((focused.weights[.aliasRevisit] ?? 0) > 0)
      #expect((focused.weights[.writeProtectWindow] ?? 0) > 0)
    }
  }

  @Test("an alias probe makes a second entry name a table and repeats the access through it")
  func aliasProbeRepeatsTheAccessThroughAnAlias() {
    var complete = 0
    var leafChanged = 0
    for seed in UInt64(1)...6 {
      for probe in Self.probes(.aliasRevisit, seed: seed, count: 10) {
        guard probe.count > 1 else { continue }  // no table on the path: a plain access
        guard case .access(let first, let access) = probe[0],
          case .access(let last, let lastAccess) = probe[probe.count - 1],
          case .access(_, let neighbourAccess) = probe[probe.count - 2]
        else {
          Issue.record("a probe starts and ends with accesses: \(probe)")
          continue
        }
        let stores = probe.dropFirst().dropLast(2)
        #expect((1...2).contains(stores.count), "the alias, perhaps a leaf change: \(probe)")
        #expect(stores.allSatisfy { if case .writeGuest = $0 { true } else { false } })
        #expect(access == lastAccess, "the same access again")
        #expect(last != first, "through another linear address")
        #expect(first & 0xFFF == last & 0xFFF, "at the same offset in the page")
        #expect(neighbourAccess.kind == .read)
        complete += 1
        if stores.count == 2 { leafChanged += 1 }
      }
    }
    #expect(complete > 30, "most probes find a table to alias")
    #expect(leafChanged > 5 && leafChanged < complete, "some change the leaf first, not all")
  }

  @Test("a write-protect window writes as the supervisor with WP clear, sets WP, writes again")
  func writeProtectWindowToggles() {
    for seed in UInt64(1)...4 {
      for probe in Self.probes(.writeProtectWindow, seed: seed, count: 6) {
        guard let last = probe.last, case .access(_, let access) = last else {
          Issue.record("a window ends with the write: \(probe)")
          continue
        }
        #expect(access.kind == .write && !access.user)
        #expect(probe.count == 3 || probe.count == 4, "\(probe)")
        guard probe.count >= 3, case .writeRegister(.cr0, let set) = probe[probe.count - 2]
        else {
          Issue.record("WP is set before the second write: \(probe)")
          continue
        }
        #expect(set & 1 << 16 != 0)
        #expect(probe[probe.count - 3] == last, "the same write before and after")
        if probe.count == 4, case .writeRegister(.cr0, let cleared) = probe[0] {
          #expect(cleared & 1 << 16 == 0)
          #expect(cleared | 1 << 16 == set)
        } else if probe.count == 4 {
          Issue.record("a window from WP = 1 clears it first: \(probe)")
        }
      }
    }
  }
}
