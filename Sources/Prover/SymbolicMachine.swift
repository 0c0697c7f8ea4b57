import Machine
import ReferenceModel
import Z3

/// A machine in the symbolic domain: a snapshot's structure, with chosen parts left as Z3
/// variables, so the model's walk over it is a formula in those variables.
///
/// ``assignment(_:)`` gives the variables the values a concrete snapshot of the same structure
/// holds; evaluating the formula under it must give what the concrete interpretation gives.
public struct SymbolicMachine {
  /// Which parts of a snapshot become variables.
  public struct Parts: OptionSet, Sendable {
    /// The raw value.
    public let rawValue: Int
    /// Makes a set of parts.
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// CR0, CR3, CR4, EFER, RFLAGS, PKRU, PKRS, EPTP or N_CR3 and the host EFER, and the
    /// mode-based-execute control.
    public static let registers = Parts(rawValue: 1)
    /// Every populated memory word (unpopulated words stay zero).
    public static let memory = Parts(rawValue: 2)
  }

  /// The domain, over its Z3 context.
  public let domain: Symbolic
  /// The state the model walks.
  public let state: ModelState<Symbolic>
  /// Every variable made, by name.
  public private(set) var variables: [String: Term] = [:]

  /// Builds the symbolic form of `machine`, with `parts` as variables and everything else
  /// constant; throws what the model refuses of the snapshot's structure.
  public init(_ machine: MachineState, context: Context, symbolic parts: Parts) throws(FormatError)
  {
    let d = Symbolic(context: context)
    domain = d
    let configuration = try Configuration(machine)
    var variables: [String: Term] = [:]
    func word(_ name: String, _ value: UInt64, _ part: Parts) -> Symbolic.Word {
      guard parts.contains(part) else { return .constant(value) }
      let v = d.variable(name)
      variables[name] = d.term(v)
      return v
    }
    func flag(_ name: String, _ value: Bool, _ part: Parts) -> Symbolic.Flag {
      guard parts.contains(part) else { return .constant(value) }
      let v = d.flagVariable(name)
      variables[name] = d.term(v)
      return v
    }
    let g = machine.guest
    let guest = GuestControl(
      d, cr0: word("cr0", g.cr0, .registers), cr3: word("cr3", g.cr3, .registers),
      cr4: word("cr4", g.cr4, .registers), efer: word("efer", g.efer, .registers),
      rflags: word("rflags", g.rflags, .registers), pkru: word("pkru", g.pkru, .registers),
      pkrs: word("pkrs", g.pkrs, .registers), addressBits: configuration.guestAddressBits)
    let nested: NestedControl<Symbolic>
    switch machine.nested {
    case .none:
      nested = .none
    case .ept(let e):
      nested = .ept(
        d, eptp: word("eptp", e.eptp, .registers), addressBits: e.physicalAddressBits,
        modeBasedExecute: flag("mbec", e.modeBasedExecute, .registers))
    case .npt(let n):
      nested = .npt(
        d, nCR3: word("ncr3", n.nCR3, .registers),
        hostEFER: word("hostEFER", n.hostEFER, .registers),
        addressBits: n.physicalAddressBits)
    }
    var words: [UInt64: Symbolic.Word] = [:]
    for (address, value) in machine.memory.words {
      words[address] = word(Self.memoryName(address), value, .memory)
    }
    state = ModelState(
      configuration: configuration, guest: guest, nested: nested,
      memory: SymbolicMemory(words: words))
    self.variables = variables
  }

  /// The name of the variable holding the memory word at `address`.
  public static func memoryName(_ address: UInt64) -> String { "mem_" + String(address, radix: 16) }

  /// Values for every variable, taken from a snapshot of the same structure and populated
  /// addresses.
  public func assignment(_ machine: MachineState) -> [(variable: Term, value: Term)] {
    let context = domain.context
    var values: [String: Term] = [:]
    let g = machine.guest
    for (name, value) in [
      ("cr0", g.cr0), ("cr3", g.cr3), ("cr4", g.cr4), ("efer", g.efer), ("rflags", g.rflags),
      ("pkru", g.pkru), ("pkrs", g.pkrs),
    ] {
      values[name] = context.bitVector(value, width: 64)
    }
    switch machine.nested {
    case .none: break
    case .ept(let e):
      values["eptp"] = context.bitVector(e.eptp, width: 64)
      values["mbec"] = context.bool(e.modeBasedExecute)
    case .npt(let n):
      values["ncr3"] = context.bitVector(n.nCR3, width: 64)
      values["hostEFER"] = context.bitVector(n.hostEFER, width: 64)
    }
    for (address, value) in machine.memory.words {
      values[Self.memoryName(address)] = context.bitVector(value, width: 64)
    }
    return variables.compactMap { name, variable in
      values[name].map { (variable: variable, value: $0) }
    }
  }
}
