import Machine

/// A machine as the model reads it, in a domain: the structure (``Configuration``), the guest's
/// control state, the nested control state and memory.
public struct ModelState<D: BitVectorDomain> {
  /// Levels, widths, vendor: concrete in every interpretation.
  public var configuration: Configuration
  /// The guest's control state.
  public var guest: GuestControl<D>
  /// The nested control state.
  public var nested: NestedControl<D>
  /// Host physical memory.
  public var memory: D.Memory

  /// Makes a state from its parts.
  public init(
    configuration: Configuration, guest: GuestControl<D>, nested: NestedControl<D>,
    memory: D.Memory
  ) {
    self.configuration = configuration
    self.guest = guest
    self.nested = nested
    self.memory = memory
  }
}

/// The values of the nested dimension's control state.
public enum NestedControl<D: BitVectorDomain> {
  /// No nested paging.
  case none
  /// EPT: the root (EPTP[N-1:12]), A/D enable (EPTP[6]), mode-based execute control.
  case ept(root: D.Word, accessedDirty: D.Flag, modeBasedExecute: D.Flag)
  /// NPT: the root (N_CR3) and the host's EFER.NXE.
  case npt(root: D.Word, executeDisable: D.Flag)

  /// Decodes an EPTP word (SEMANTICS §2.1): the root in bits N-1:12, A/D enable in bit 6.
  public static func ept(
    _ d: D, eptp: D.Word, addressBits: Int, modeBasedExecute: D.Flag
  ) -> NestedControl {
    .ept(
      root: d.masked(eptp, mask(addressBits - 1, 12)), accessedDirty: d.bit(eptp, 6),
      modeBasedExecute: modeBasedExecute)
  }

  /// Decodes N_CR3 and the host's EFER (SEMANTICS §3.1).
  public static func npt(_ d: D, nCR3: D.Word, hostEFER: D.Word, addressBits: Int)
    -> NestedControl
  {
    .npt(
      root: d.masked(nCR3, mask(addressBits - 1, 12)),
      executeDisable: d.bit(hostEFER, RegisterBit.eferExecuteDisableEnable))
  }
}

extension NestedControl: Sendable where D.Word: Sendable, D.Flag: Sendable {}
extension ModelState: Sendable where D.Word: Sendable, D.Flag: Sendable, D.Memory: Sendable {}

extension ModelState where D == Concrete {
  /// The concrete state of a snapshot; throws what ``Configuration/init(_:file:)`` refuses.
  public init(_ machine: MachineState, file: String? = nil) throws(FormatError) {
    let d = Concrete()
    let configuration = try Configuration(machine, file: file)
    let g = machine.guest
    let guest = GuestControl(
      d, cr0: g.cr0, cr3: g.cr3, cr4: g.cr4, efer: g.efer, rflags: g.rflags, pkru: g.pkru,
      pkrs: g.pkrs, addressBits: configuration.guestAddressBits)
    let nested: NestedControl<Concrete>
    switch machine.nested {
    case .none: nested = .none
    case .ept(let e):
      nested = .ept(
        d, eptp: e.eptp, addressBits: e.physicalAddressBits, modeBasedExecute: e.modeBasedExecute)
    case .npt(let n):
      nested = .npt(d, nCR3: n.nCR3, hostEFER: n.hostEFER, addressBits: n.physicalAddressBits)
    }
    self.init(
      configuration: configuration, guest: guest, nested: nested,
      memory: FrameMemory(machine.memory))
  }
}
