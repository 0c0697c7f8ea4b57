import Machine

/// The reference model's concrete interpretation over one machine: the executable oracle.
///
/// `translate` answers one access without changing anything; `perform` also applies the
/// accessed/dirty writes the access makes, as hardware would.
public struct ConcreteModel: Sendable {
  /// The state the model translates over; A/D writes of `perform` change its memory.
  public var state: ModelState<Concrete>

  /// Loads a snapshot; throws a ``FormatError`` naming the field for configurations the model
  /// refuses (unsupported paging modes, invalid EPTP, vendor mismatches).
  public init(_ machine: MachineState, file: String? = nil) throws(FormatError) {
    state = try ModelState(machine, file: file)
  }

  /// Translates one access. `choices` picks one of the architecture's allowed behaviours
  /// (SEMANTICS §8); `recording` keeps every memory reference for explanation.
  public func translate(
    _ linear: UInt64, _ access: Access, choices: Choices<Concrete> = .kvm,
    recording: Bool = false
  ) -> Translation<Concrete> {
    let d = Concrete()
    return ReferenceModel.translate(
      d, state, linear: linear, access: AccessDescriptor(d, access), choices: choices,
      recording: recording)
  }

  /// Translates one access and applies its accessed/dirty writes.
  public mutating func perform(
    _ linear: UInt64, _ access: Access, choices: Choices<Concrete> = .kvm
  ) -> Outcome {
    let result = translate(linear, access, choices: choices)
    apply(result.updates)
    return result.outcome
  }

  /// Applies accessed/dirty writes: each that happens ORs its bits into memory.
  public mutating func apply(_ updates: [Update<Concrete>]) {
    for update in updates where update.happens {
      state.memory[update.address] |= update.bits
    }
  }

  /// The current memory as a snapshot.
  public var memory: PhysicalMemory { state.memory.snapshot }
}

extension Translation where D == Concrete {
  /// What the access makes visible.
  public var outcome: Outcome {
    switch OutcomeKind(rawValue: kind) ?? .translated {
    case .translated: .translated(hostPhysical: address)
    case .generalProtection: .generalProtection
    case .pageFault: .pageFault(errorCode: code, linearAddress: address)
    case .eptViolation:
      .eptViolation(
        qualification: code, guestPhysical: address,
        guestLinear: code & (1 << 7) != 0 ? linear : nil)
    case .eptMisconfiguration: .eptMisconfiguration(guestPhysical: address)
    case .nestedPageFault: .nestedPageFault(exitInfo1: code, exitInfo2: address)
    }
  }

  /// The rule that decided.
  public var decidingRule: Rule { Rule(rawValue: rule) ?? .translated }

  /// Where it was decided.
  public var decidingStage: Stage { Stage(rawValue: stage) ?? .none }

  /// The accessed/dirty writes that happen.
  public var performedUpdates: [Update<Concrete>] { updates.filter(\.happens) }
}
