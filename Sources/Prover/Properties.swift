import Machine
import ReferenceModel

/// The properties `nestcheck prove` checks, in the terms of SEMANTICS §5.5. Each is stated for
/// every canonical guest virtual address (or, for the host half of isolation, every
/// guest-physical address), each of the nine accesses (read, write, fetch; user, supervisor,
/// implicit supervisor), over translations the reference model computes (docs/prover.md).
public enum PropertyName: String, CaseIterable, Hashable, Sendable, Comparable {
  /// I1, I2, I3: whatever the shadow permits, guest-plus-host permits, at the same host
  /// physical address.
  case soundness
  /// I4: an access the shadow permits makes guest-plus-host write no guest A or D bit.
  case accessedDirty = "accessed-dirty"
  /// I5: no write the shadow permits lands in a host frame backing a synced guest page table.
  case pageTableProtection = "page-table-protection"
  /// Every translation that succeeds, shadow or host (EPT/NPT), lands in the host ranges.
  case isolation
  /// I9: the fault the hypervisor derives from the hardware's error code is the reference
  /// walk's; #GP exactly where the guest takes #GP.
  case faultClassification = "fault-classification"
  /// SEMANTICS §5.2 as a function: a shadow leaf derived from any guest and host entries never
  /// grants more than the composition (over all 2^64 values of each entry).
  case entryLemmas = "entry-lemmas"

  /// Whether the property is about shadow tables, so that a state must have them for it.
  /// Isolation's host half and the entry lemmas need no shadow.
  public var needsShadow: Bool {
    switch self {
    case .soundness, .accessedDirty, .pageTableProtection, .faultClassification: true
    case .isolation, .entryLemmas: false
    }
  }

  /// One line saying what the property means.
  public var summary: String {
    switch self {
    case .soundness:
      "I1-I3: shadow permits => guest-plus-host permits, same host physical address"
    case .accessedDirty:
      "I4: shadow permits => guest-plus-host writes no guest A/D bit (A set on the path, D for "
        + "writes)"
    case .pageTableProtection:
      "I5: no shadow-permitted write reaches a host frame backing a synced guest page table"
    case .isolation:
      "every successful shadow and EPT/NPT translation lands inside the host ranges"
    case .faultClassification:
      "I9: guest #PF derived from the hardware error code equals the reference walk's; #GP "
        + "agrees"
    case .entryLemmas:
      "§5.2 entry derivation never grants more than the composition, all 2^64 entry values"
    }
  }

  /// The order properties are reported in.
  public static func < (a: PropertyName, b: PropertyName) -> Bool {
    allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
  }
}

/// What the properties need beyond the translations: facts about host frames, as functions in
/// the domain so that symbolic addresses get formulas and concrete ones get answers.
struct PropertyEnvironment<D: BitVectorDomain> {
  /// Whether a host physical address lies inside the guest's host ranges.
  var inRanges: (D.Word) -> D.Flag
  /// Whether a host physical address lies in a frame backing a guest page table that the
  /// shadow must write-protect (shadowed by a table of the shadow, synced; SEMANTICS §5.1).
  var protected: (D.Word) -> D.Flag
}

/// The translations one property instance reads.
struct Observation<D: BitVectorDomain> {
  /// The shadow walk, for each of ``allAccesses``.
  var shadow: [Translation<D>]
  /// The guest-plus-host walk, for each of ``allAccesses``.
  var composition: [Translation<D>]
}

/// Whether a translation succeeded.
func translated<D: BitVectorDomain>(_ d: D, _ t: Translation<D>) -> D.Flag {
  d.equal(t.kind, d.word(OutcomeKind.translated.rawValue))
}

/// The property `name` for the access `allAccesses[index]` (linear-address properties).
func holds<D: BitVectorDomain>(
  _ name: PropertyName, _ d: D, access index: Int, _ o: Observation<D>,
  _ environment: PropertyEnvironment<D>
) -> D.Flag {
  let shadow = o.shadow[index]
  let composition = o.composition[index]
  let shadowPermits = translated(d, shadow)
  switch name {
  case .soundness:
    // I1: permitted by the shadow ⇒ permitted by guest and host; I2: at the same host
    // physical address (page frame and offset); I3 follows for each access kind and privilege.
    return d.implies(
      shadowPermits,
      d.and(translated(d, composition), d.equal(shadow.address, composition.address)))
  case .accessedDirty:
    // I4: the composition would write no guest A/D bit for an access the shadow lets through.
    var writes = d.no
    for update in composition.updates where update.stage == .guest {
      writes = d.or(writes, update.happens)
    }
    return d.implies(shadowPermits, d.not(writes))
  case .pageTableProtection:
    guard allAccesses[index].kind == .write else { return d.yes }
    return d.implies(shadowPermits, d.not(environment.protected(shadow.address)))
  case .isolation:
    return d.implies(shadowPermits, environment.inRanges(shadow.address))
  case .faultClassification:
    return faultClassification(d, access: index, o)
  case .entryLemmas:
    return d.yes
  }
}

/// I9 (SEMANTICS §5.3 steps 2–4, §5.5): the hypervisor sees only the hardware's #PF error
/// code, rebuilds the access from its W/R, U/S and I/D bits, walks the guest for that access,
/// and injects the guest walk's fault. That must be the fault the guest takes for the real
/// access: for every candidate access the error code could stand for (same implicitness),
/// guest-plus-host classifies it as the real access (guest #PF or not, same error code). And
/// a non-canonical address raises #GP in both.
func faultClassification<D: BitVectorDomain>(_ d: D, access index: Int, _ o: Observation<D>)
  -> D.Flag
{
  let shadow = o.shadow[index]
  let real = o.composition[index]
  let gp = d.word(OutcomeKind.generalProtection.rawValue)
  let pf = d.word(OutcomeKind.pageFault.rawValue)
  let shadowGP = d.equal(shadow.kind, gp)
  let compositionGP = d.equal(real.kind, gp)
  let gpAgrees = d.or(d.and(shadowGP, compositionGP), d.and(d.not(shadowGP), d.not(compositionGP)))
  let shadowFault = d.equal(shadow.kind, pf)
  let code = shadow.code
  let access = allAccesses[index]
  var consistent = d.yes
  for (other, candidate) in allAccesses.enumerated() where candidate.implicit == access.implicit {
    let matches = d.all(
      d.equal(d.field(code, 1, 1), d.word(candidate.kind == .write ? 1 : 0)),
      d.equal(d.field(code, 2, 2), d.word(candidate.user ? 1 : 0)),
      d.equal(
        d.field(code, 4, 4), d.word(candidate.kind == .fetch ? 1 : 0)))
    let rebuilt = o.composition[other]
    let realFault = d.equal(real.kind, pf)
    let rebuiltFault = d.equal(rebuilt.kind, pf)
    let same = d.and(
      d.or(d.and(realFault, rebuiltFault), d.and(d.not(realFault), d.not(rebuiltFault))),
      d.implies(realFault, d.equal(real.code, rebuilt.code)))
    consistent = d.and(consistent, d.implies(matches, same))
  }
  return d.and(gpAgrees, d.implies(shadowFault, consistent))
}

/// Host isolation for the host mapping alone: a guest-physical access that EPT/NPT translates
/// lands in the host ranges.
func nestedIsolation<D: BitVectorDomain>(
  _ d: D, _ nested: Translation<D>, _ environment: PropertyEnvironment<D>
) -> D.Flag {
  d.implies(translated(d, nested), environment.inRanges(nested.address))
}
