import Machine
import ReferenceModel

/// What the prover proves things about: one snapshot seen three ways, each an ordinary machine
/// the reference model walks (there is no second copy of any rule).
///
/// - **shadow**: the hardware walk of the shadow tables — the model's WALK64 with the shadow
///   root as CR3, the control registers the hypervisor runs the guest with
///   (``ShadowPaging``), the guest's RFLAGS and key registers, no nested paging, same memory;
/// - **composition**: guest-plus-host — the model's WALK2D over the guest's own state;
/// - **nested**: the host mapping alone — the model's walk with guest paging off, so a
///   "linear" address is a guest-physical one and only the EPT/NPT walk runs.
struct ProofProblem: Sendable {
  let machine: MachineState
  /// The shadow's view; `nil` for a state without shadow tables (only isolation's host half
  /// and the entry lemmas apply then).
  let shadowMachine: MachineState?
  let nestedMachine: MachineState?
  let shadowModel: ConcreteModel?
  let compositionModel: ConcreteModel
  let nestedModel: ConcreteModel?
  /// Guest paging levels (the shadow's equal them); 0 with guest paging off, which only a
  /// state without a shadow may have.
  let levels: Int

  /// Derives the views; throws a ``FormatError`` for states the prover cannot judge.
  init(_ machine: MachineState, file: String? = nil) throws(FormatError) {
    func fail(_ field: String, _ message: String) -> FormatError {
      FormatError(file: file, field: field, message: message)
    }
    self.machine = machine
    compositionModel = try ConcreteModel(machine, file: file)
    levels = compositionModel.state.configuration.guestLevels
    if let shadow = machine.shadow {
      let g = machine.guest
      let shadowRegisters = GuestRegisters(
        cr0: shadow.cr0, cr3: shadow.cr3, cr4: shadow.cr4, efer: shadow.efer, rflags: g.rflags,
        pkru: g.pkru, pkrs: g.pkrs)
      var shadowProcessor = machine.processor
      shadowProcessor.physicalAddressBits = machine.hostAddressBits
      let shadowMachine = MachineState(
        processor: shadowProcessor, guest: shadowRegisters, nested: .none,
        memory: machine.memory)
      self.shadowMachine = shadowMachine
      let shadowModel: ConcreteModel
      do {
        shadowModel = try ConcreteModel(shadowMachine, file: file)
      } catch {
        throw fail("shadow", "the shadow's control registers: \(error.message)")
      }
      self.shadowModel = shadowModel
      guard levels > 0 else {
        throw fail("guest.cr0", "guest paging is off: there is no guest walk to shadow")
      }
      guard shadowModel.state.configuration.guestLevels == levels else {
        throw fail(
          "shadow.cr4",
          "the shadow runs \(shadowModel.state.configuration.guestLevels)-level paging but the "
            + "guest \(levels)-level (CR4.LA57 differs)")
      }
    } else {
      shadowMachine = nil
      shadowModel = nil
    }
    if case .none = machine.nested {
      nestedMachine = nil
      nestedModel = nil
    } else {
      let off = GuestRegisters(cr0: 0, cr3: 0, cr4: 0, efer: 0)
      let nested = MachineState(
        processor: machine.processor, guest: off, nested: machine.nested, memory: machine.memory)
      nestedMachine = nested
      nestedModel = try ConcreteModel(nested, file: file)
    }
  }

  /// The guest's and host's formats.
  var configuration: Configuration { compositionModel.state.configuration }

  /// The bit above the canonical range: 47 for 4-level paging, 56 for 5-level.
  var topBit: Int { levels == 5 ? 56 : 47 }

  /// The host frame numbers of the guest's out-of-sync level-1 tables (through the host
  /// mapping, as the model translates a guest-physical address).
  var unsyncHostFrames: Set<UInt64> {
    var frames = Set<UInt64>()
    for gfn in machine.shadow?.unsyncTables ?? [] {
      let address = gfn << 12
      if let nestedModel {
        let t = nestedModel.translate(address, Access(.read))
        if case .translated(let hpa) = t.outcome { frames.insert(hpa >> 12) }
      } else {
        frames.insert(gfn)
      }
    }
    return frames
  }
}

extension MachineState {
  /// The host's physical-address width: EPT's or NPT's N, else MAXPHYADDR.
  var hostAddressBits: Int {
    switch nested {
    case .ept(let e): e.physicalAddressBits
    case .npt(let n): n.physicalAddressBits
    case .none: processor.physicalAddressBits
    }
  }
}

/// The nine accesses every property is checked for: each kind, user and supervisor, and the
/// implicit supervisor accesses (SEMANTICS §1.4).
let allAccesses: [Access] = AccessKind.allCases.flatMap { kind in
  [Access(kind, user: false), Access(kind, user: true), Access(kind, implicit: true)]
}
