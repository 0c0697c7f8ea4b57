import Machine
import ReferenceModel
import Z3

/// What deciding one property on one cell gave.
enum CellVerdict {
  /// Holds on every address of the cell.
  case holds
  /// Fails at this concrete address and access (already replayed).
  case fails(Counterexample)
  /// Z3 gave up on a query.
  case unknown(String)
}

/// Settings every query shares.
struct QuerySettings: Sendable {
  var timeoutMilliseconds: UInt32?
  var resourceLimit: UInt32?
  /// Where to write each query's SMT-LIB2 text, if anywhere.
  var emitDirectory: String?

  /// Why a query came back unknown, in words: Z3's reason, and the budgets it ran under
  /// (Z3 often says only "unknown" when a budget runs out).
  func explain(unknown reason: String) -> String {
    var budgets: [String] = []
    if let timeoutMilliseconds { budgets.append("--timeout \(timeoutMilliseconds) ms") }
    if let resourceLimit { budgets.append("--rlimit \(resourceLimit)") }
    let said = reason.isEmpty || reason == "unknown" ? "Z3 gave up" : "Z3 gave up: \(reason)"
    return budgets.isEmpty ? said : said + " (under " + budgets.joined(separator: ", ") + ")"
  }
}

/// Counts of how obligations were discharged.
public struct ProofStatistics: Hashable, Sendable {
  /// Cells of the decomposition.
  public var cells = 0
  /// Lanes (independent address ranges) evaluated.
  public var lanes = 0
  /// Obligations (property × access × lane) that the symbolic evaluation reduced to `true`.
  public var folded = 0
  /// Obligations sent to Z3.
  public var queries = 0

  /// Adds another's counts.
  mutating func add(_ other: ProofStatistics) {
    cells += other.cells
    lanes += other.lanes
    folded += other.folded
    queries += other.queries
  }
}

/// The prover's worker: one Z3 context, the three views in the symbolic domain, and the
/// environment sets. Not `Sendable`; each task makes its own.
final class CellProver {
  let problem: ProofProblem
  let context = Context()
  let shadowState: ModelState<Symbolic>?
  let compositionState: ModelState<Symbolic>
  let nestedState: ModelState<Symbolic>?
  let protectedFrames: Set<UInt64>
  let ranges: [HostRange]
  let settings: QuerySettings
  var statistics = ProofStatistics()
  private var queryNumber = 0
  let worker: Int

  init(
    problem: ProofProblem, protectedFrames: Set<UInt64>, settings: QuerySettings, worker: Int
  ) throws(FormatError) {
    self.problem = problem
    self.protectedFrames = protectedFrames
    self.ranges = problem.machine.hostRanges
    self.settings = settings
    self.worker = worker
    let d = Symbolic(context: context)
    let memory = SymbolicMemory(problem.machine.memory)
    shadowState = try problem.shadowMachine.map { m throws(FormatError) in
      try symbolicState(d, m, memory)
    }
    compositionState = try symbolicState(d, problem.machine, memory)
    nestedState = try problem.nestedMachine.map { m throws(FormatError) in
      try symbolicState(d, m, memory)
    }
  }

  // MARK: Environment

  func environment(_ d: Symbolic) -> PropertyEnvironment<Symbolic> {
    PropertyEnvironment(
      inRanges: { self.inRanges(d, $0) },
      protected: { self.isProtected(d, $0) })
  }

  func isProtected(_ d: Symbolic, _ address: Symbolic.Word) -> Symbolic.Flag {
    let frame = d.shiftRight(address, 12)
    switch frame {
    case .constant(let f): return .constant(protectedFrames.contains(f))
    case .lanes(let values): return d.normalize(values.map { protectedFrames.contains($0) })
    case .mixed(let values): return d.normalize(values.map { isProtected(d, d.shiftLeft($0, 12)) })
    default:
      var result = Symbolic.Flag.constant(false)
      for f in protectedFrames.sorted() { result = d.or(result, d.equal(frame, .constant(f))) }
      return result
    }
  }

  func inRanges(_ d: Symbolic, _ address: Symbolic.Word) -> Symbolic.Flag {
    switch address {
    case .constant(let a): return .constant(ranges.contains { $0.contains(a) })
    case .lanes(let values):
      return d.normalize(values.map { a in ranges.contains { $0.contains(a) } })
    case .mixed(let values): return d.normalize(values.map { inRanges(d, $0) })
    default:
      var result = Symbolic.Flag.constant(false)
      for r in ranges {
        let start = d.unsignedLess(address, .constant(r.base))
        let end = r.base &+ r.size
        let below =
          end == 0 ? Symbolic.Flag.constant(true) : d.unsignedLess(address, .constant(end))
        result = d.or(result, d.and(d.not(start), below))
      }
      return result
    }
  }

  // MARK: Cells

  /// Decides `properties` on `cell`; properties already violated in an earlier cell of this
  /// worker are left out by the caller.
  func decide(_ cell: Cell, _ properties: [PropertyName]) throws -> [PropertyName: CellVerdict] {
    statistics.cells += 1
    var facts = SymbolicFacts()
    let plain = Symbolic(context: context)
    let (address, laneBases) = addresses(plain, cell, &facts)
    let d = Symbolic(context: context, facts: facts)
    statistics.lanes += max(1, laneBases.count)
    let choices = Choices<Symbolic>(
      accessedOnFault: .constant(false), accessedDirtyBeforeFinal: .constant(false),
      readBitOnAccessedDirtyWrite: .constant(false), nestedDirtyOnTableRead: .constant(false),
      advancedQualification: .constant(false))
    let environment = self.environment(d)
    var results: [PropertyName: CellVerdict] = [:]

    if case .guestPhysical = cell.space {
      guard properties.contains(.isolation), !ranges.isEmpty, let nestedState else { return [:] }
      for (index, access) in allAccesses.enumerated() {
        let t = translate(
          d, nestedState, linear: address, access: AccessDescriptor(d, access), choices: choices)
        let flag = nestedIsolation(d, t, environment)
        let verdict = try settle(
          flag, d: d, facts: facts, cell: cell, laneBases: laneBases, property: .isolation,
          access: index)
        if case .holds = verdict { continue }
        results[.isolation] = verdict
        break
      }
      return results
    }

    guard let shadowState else { return [:] }
    let observation = Observation(
      shadow: allAccesses.map {
        translate(
          d, shadowState, linear: address, access: AccessDescriptor(d, $0), choices: choices)
      },
      composition: allAccesses.map {
        translate(
          d, compositionState, linear: address, access: AccessDescriptor(d, $0), choices: choices)
      })
    for property in properties where property != .entryLemmas {
      if cell.stale && property != .isolation && property != .pageTableProtection { continue }
      if property == .isolation && ranges.isEmpty { continue }
      for index in allAccesses.indices {
        let flag = holds(property, d, access: index, observation, environment)
        let verdict = try settle(
          flag, d: d, facts: facts, cell: cell, laneBases: laneBases, property: property,
          access: index)
        if case .holds = verdict { continue }
        results[property] = verdict
        break
      }
    }
    return results
  }

  /// The cell's addresses as a word, the lane bases (empty for a one-lane cell), and the facts
  /// that describe the cell.
  func addresses(_ d: Symbolic, _ cell: Cell, _ facts: inout SymbolicFacts) -> (
    Symbolic.Word, [UInt64]
  ) {
    let shift = cell.shift
    switch cell.shape {
    case .lanes(let indices):
      let low = context.bitVectorVariable("low\(shift)", width: shift)
      let bases = indices.map { cell.prefix | $0 << UInt64(shift) }
      if bases.count == 1 { return (.partial(high: bases[0], width: shift, low: low), []) }
      return (.mixed(bases.map { .partial(high: $0, width: shift, low: low) }), bases)
    case .rest(let excluded):
      let width = shift + 9
      let variable = context.bitVectorVariable("rest\(width)", width: width)
      let address: Symbolic.Word =
        width >= 64 ? .term(variable) : .partial(high: cell.prefix, width: width, low: variable)
      let index = d.masked(d.shiftRight(address, shift), 0x1FF)
      if case .partial(_, _, let indexTerm) = index {
        facts.exclude(indexTerm, from: Set(excluded))
      }
      if case .partial(_, _, let entryOffset) = d.shiftLeft(index, 3) {
        facts.exclude(entryOffset, from: Set(excluded.map { $0 << 3 }))
      }
      if cell.space == .linear && cell.level == problem.levels {
        // The canonical half this cell lies in: bit `topBit` equals the bits above it.
        let top = d.shiftRight(address, problem.topBit)
        let expected = cell.prefix == 0 ? 0 : mask(width: 64 - problem.topBit)
        if case .term(let t) = d.equal(top, .constant(expected)) { facts.assume(t) }
      }
      return (address, [])
    case .nonCanonical:
      let variable = context.bitVectorVariable("va", width: 64)
      let address = Symbolic.Word.term(variable)
      let top = d.shiftRight(address, problem.topBit)
      for value in [0, mask(width: 63 - problem.topBit + 1)] {
        if case .term(let t) = d.equal(top, .constant(value)) { facts.refute(t) }
      }
      return (address, [])
    }
  }

  /// Turns a property's flag on a cell into a verdict: `true` lanes hold; any other lane is a
  /// query (facts ∧ ¬flag), whose model is replayed concretely.
  func settle(
    _ flag: Symbolic.Flag, d: Symbolic, facts: SymbolicFacts, cell: Cell, laneBases: [UInt64],
    property: PropertyName, access: Int
  ) throws -> CellVerdict {
    let lanes = max(1, laneBases.count, d.laneCount(flag))
    for lane in 0..<lanes {
      let value = d.lane(lane, of: flag)
      if case .constant(true) = value {
        statistics.folded += 1
        continue
      }
      statistics.queries += 1
      let solver = try Solver(context: context)
      solver.timeoutMilliseconds = settings.timeoutMilliseconds
      solver.resourceLimit = settings.resourceLimit
      var assertions = facts.assertions(context)
      assertions.append(d.term(value).not())
      solver.assert(assertions)
      if let directory = settings.emitDirectory {
        queryNumber += 1
        let name =
          "\(property.rawValue)-w\(worker)-\(queryNumber)-\(allAccesses[access].description.replacingOccurrences(of: " ", with: "-")).smt2"
        try writeQuery(try solver.smtlib2(), to: directory, name: name)
      }
      switch try solver.check() {
      case .unsatisfiable: continue
      case .unknown(let reason): return .unknown(settings.explain(unknown: reason))
      case .satisfiable:
        let model = try solver.model()
        let address = try concreteAddress(cell, laneBases: laneBases, lane: lane, model: model)
        return .fails(
          try Counterexample.replay(
            problem, property: property, address: address, access: allAccesses[access],
            space: cell.space, protectedFrames: protectedFrames))
      }
    }
    return .holds
  }

  /// The concrete address a model picks in a cell's lane.
  func concreteAddress(_ cell: Cell, laneBases: [UInt64], lane: Int, model: Model) throws
    -> UInt64
  {
    let shift = cell.shift
    switch cell.shape {
    case .lanes(let indices):
      let low = context.bitVectorVariable("low\(shift)", width: shift)
      let value = try model.uint64(of: low, completion: true) ?? 0
      let base = laneBases.isEmpty ? cell.prefix | indices[0] << UInt64(shift) : laneBases[lane]
      return base | value
    case .rest:
      let width = shift + 9
      let variable = context.bitVectorVariable("rest\(width)", width: width)
      let value = try model.uint64(of: variable, completion: true) ?? 0
      return width >= 64 ? value : cell.prefix | value
    case .nonCanonical:
      return try model.uint64(of: context.bitVectorVariable("va", width: 64), completion: true)
        ?? 0
    }
  }
}

/// A machine's model state in the symbolic domain, every value a constant.
func symbolicState(_ d: Symbolic, _ machine: MachineState, _ memory: SymbolicMemory)
  throws(FormatError) -> ModelState<Symbolic>
{
  let configuration = try Configuration(machine)
  let g = machine.guest
  let guest = GuestControl(
    d, cr0: .constant(g.cr0), cr3: .constant(g.cr3), cr4: .constant(g.cr4),
    efer: .constant(g.efer), rflags: .constant(g.rflags), pkru: .constant(g.pkru),
    pkrs: .constant(g.pkrs), addressBits: configuration.guestAddressBits)
  let nested: NestedControl<Symbolic>
  switch machine.nested {
  case .none: nested = .none
  case .ept(let e):
    nested = .ept(
      d, eptp: .constant(e.eptp), addressBits: e.physicalAddressBits,
      modeBasedExecute: .constant(e.modeBasedExecute))
  case .npt(let n):
    nested = .npt(
      d, nCR3: .constant(n.nCR3), hostEFER: .constant(n.hostEFER),
      addressBits: n.physicalAddressBits)
  }
  return ModelState(configuration: configuration, guest: guest, nested: nested, memory: memory)
}
