import Machine
import ReferenceModel

/// A concrete address and access at which a property fails, confirmed by the concrete model.
///
/// Every model Z3 returns is replayed through the concrete interpretation before it is
/// reported (ENGINEERING-NOTES: an encoding bug shows up as a counterexample the concrete model
/// refutes); a refuted one is an internal error, never a violation.
public struct Counterexample: Hashable, Sendable {
  /// The property that fails.
  public var property: PropertyName
  /// The guest virtual address (guest-physical for the host half of isolation).
  public var address: UInt64
  /// The access.
  public var access: Access
  /// Whether ``address`` is guest-physical (the EPT/NPT mapping alone was checked).
  public var guestPhysical: Bool
  /// One line saying what goes wrong, from the concrete walks.
  public var summary: String

  /// Replays a candidate through the concrete model; throws ``ProverError/internalError(_:)``
  /// when the model says the property holds there.
  static func replay(
    _ problem: ProofProblem, property: PropertyName, address: UInt64, access: Access,
    space: Cell.Space, protectedFrames: Set<UInt64>
  ) throws(ProverError) -> Counterexample {
    let d = Concrete()
    let ranges = problem.machine.hostRanges
    let environment = PropertyEnvironment<Concrete>(
      inRanges: { a in ranges.contains { $0.contains(a) } },
      protected: { protectedFrames.contains($0 >> 12) })
    let index = allAccesses.firstIndex(of: access) ?? 0
    if case .guestPhysical = space {
      guard let nested = problem.nestedModel else {
        throw .internalError("a guest-physical counterexample without nested paging")
      }
      let t = nested.translate(address, access)
      guard !nestedIsolation(d, t, environment) else {
        throw .internalError(
          "encoding bug: Z3 claims \(property.rawValue) fails at guest physical \(hex(address))"
            + " (\(access)), but the concrete model disagrees")
      }
      return Counterexample(
        property: property, address: address, access: access, guestPhysical: true,
        summary: "the host mapping translates guest physical \(hex(address)) to "
          + "\(hex(t.address)), outside the host ranges "
          + ranges.map(\.description).joined(separator: ", "))
    }
    guard let shadowModel = problem.shadowModel else {
      throw .internalError("a guest-virtual counterexample without shadow tables")
    }
    let observation = Observation(
      shadow: allAccesses.map { shadowModel.translate(address, $0) },
      composition: allAccesses.map { problem.compositionModel.translate(address, $0) })
    guard !holds(property, d, access: index, observation, environment) else {
      throw .internalError(
        "encoding bug: Z3 claims \(property.rawValue) fails at \(hex(address)) (\(access)), but "
          + "the concrete model disagrees")
    }
    let shadow = observation.shadow[index]
    let composition = observation.composition[index]
    let summary: String
    switch property {
    case .soundness:
      summary =
        composition.outcome.kindName == "translated"
        ? "the shadow translates to \(hex(shadow.address)) but guest-plus-host to "
          + hex(composition.address)
        : "the shadow permits the access (to \(hex(shadow.address))) but guest-plus-host gives "
          + composition.outcome.description
    case .accessedDirty:
      let bits = composition.performedUpdates.filter { $0.stage == .guest }.map {
        (update: Update<Concrete>) -> String in
        problem.compositionModel.accessedDirtyNames(update.bits, stage: update.stage).joined(
          separator: "+")
          + " in the guest " + pagingLevelName(update.level)
      }
      summary =
        "the shadow permits the access but the guest walk must still set "
        + bits.joined(separator: ", ")
    case .pageTableProtection:
      summary =
        "the shadow permits a write to host frame \(hex((shadow.address >> 12) << 12)), which "
        + "backs a synced guest page table"
    case .isolation:
      summary =
        "the shadow translates to \(hex(shadow.address)), outside the host ranges "
        + ranges.map(\.description).joined(separator: ", ")
    case .faultClassification:
      summary =
        "the shadow gives \(shadow.outcome); rebuilding the access from that error code "
        + "does not give the guest's own fault (\(composition.outcome))"
    case .entryLemmas:
      throw .internalError("entry-lemma counterexamples are replayed by EntryLemmas")
    }
    return Counterexample(
      property: property, address: address, access: access, guestPhysical: false,
      summary: summary)
  }
}

/// A failure of the prover itself or of its input.
public enum ProverError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The state cannot be judged (no shadow, paging modes that differ, …).
  case badInput(FormatError)
  /// A bug in nestcheck: an encoding the concrete model refutes, or a Z3 failure.
  case internalError(String)
  /// The state is too large to hold in memory.
  case tooLarge(String)

  /// One line.
  public var description: String {
    switch self {
    case .badInput(let e): e.description
    case .internalError(let m): "internal error: " + m
    case .tooLarge(let m): m
    }
  }
}

/// The two walks behind a counterexample, recorded reference by reference, for display.
public struct ReplayedWalks {
  /// The concrete model of the shadow's hardware walk (for decoding its entries).
  public let shadowModel: ConcreteModel
  /// The concrete model of guest-plus-host.
  public let compositionModel: ConcreteModel
  /// The shadow walk.
  public let shadow: Translation<Concrete>
  /// The guest-plus-host walk.
  public let composition: Translation<Concrete>
  /// Per guest level, top down: the shadow entry and the guest entry read there.
  public let rows: [Row]
  /// The first row where the walks part (``rows``.count: they part only in the outcome).
  public let firstDifference: Int?

  /// One level of both walks.
  public struct Row {
    /// The paging level.
    public let level: Int
    /// The shadow entry read at this level, if the walk got there.
    public let shadow: MemoryReference<Concrete>?
    /// The guest entry read at this level (at its host address), if the walk got there.
    public let guest: MemoryReference<Concrete>?
  }
}

extension Counterexample {
  /// Replays the counterexample with recording on; `nil` for a guest-physical one.
  public func walks(in machine: MachineState) throws(ProverError) -> ReplayedWalks? {
    guard !guestPhysical, property != .entryLemmas else { return nil }
    let problem: ProofProblem
    do {
      problem = try ProofProblem(machine)
    } catch {
      throw .badInput(error)
    }
    guard let shadowModel = problem.shadowModel else { return nil }
    let shadow = shadowModel.translate(address, access, recording: true)
    let composition = problem.compositionModel.translate(address, access, recording: true)
    var rows: [ReplayedWalks.Row] = []
    for level in stride(from: problem.levels, through: 1, by: -1) {
      rows.append(
        ReplayedWalks.Row(
          level: level,
          shadow: shadow.references.first { $0.stage == .guest && $0.level == level },
          guest: composition.references.first { $0.stage == .guest && $0.level == level }))
    }
    // Where they part: an entry present in one walk and not the other; else the guest's leaf
    // level, when the accumulated rights or the guest's A/D state disagree. A shadow that
    // splinters a large guest page is not a difference, and non-leaf shadow entries have full
    // rights by design (§5.2 steps 8 and 9).
    var first: Int?
    for (i, row) in rows.enumerated() {
      let s = row.shadow.map { shadowModel.describe($0) }
      let g = row.guest.map { problem.compositionModel.describe($0) }
      if (s?.present ?? false) != (g?.present ?? false) {
        first = i
        break
      }
      if g?.leaf == true {
        let r1 = shadow.guestRights
        let r2 = composition.guestRights
        if r1.user != r2.user || r1.writable != r2.writable || r1.executable != r2.executable
          || g?.field("A")?.value != 1 || (access.kind == .write && g?.field("D")?.value != 1)
        {
          first = i
        }
        break
      }
    }
    if first == nil && (shadow.outcome != composition.outcome) { first = rows.count }
    return ReplayedWalks(
      shadowModel: shadowModel, compositionModel: problem.compositionModel,
      shadow: shadow, composition: composition, rows: rows, firstDifference: first)
  }
}
