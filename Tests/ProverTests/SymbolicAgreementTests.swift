import Machine
import Prover
import ReferenceModel
import Testing
import Workloads
import Z3

/// The one model has two interpretations; this suite checks they agree (DESIGN.md: "evaluating
/// the symbolic term under a concrete assignment must give the concrete result, on many random
/// states"). If the symbolic walk depended on a shortcut only the concrete domain takes, the
/// formulas the prover checks would not describe what the oracle executes.
@Suite("Symbolic and concrete interpretations agree")
struct SymbolicAgreementTests {
  static let statesPerShape = 24
  static let triplesPerState = 30

  @Test(
    "The symbolic walk evaluated under an assignment equals the concrete walk",
    arguments: PagingShape.all)
  func agreement(shape: PagingShape) throws {
    var compared = 0
    var kinds = Set<OutcomeKind>()
    for seed in 0..<UInt64(Self.statesPerShape) {
      let random = RandomMachine(
        shape: shape, seed: seed &* 7919 &+ UInt64(shape.hashValue & 0xFFFF))
      let result = try compare(random, seed: seed)
      compared += result.compared
      kinds.formUnion(result.kinds)
      if !result.mismatches.isEmpty {
        Issue.record(
          "\(shape), seed \(seed): \(result.mismatches.count) mismatches; first: \(result.mismatches[0])"
        )
        return
      }
    }
    #expect(compared == Self.statesPerShape * Self.triplesPerState)
    // The random states reach the outcomes each shape can produce.
    var expected: Set<OutcomeKind> = [.translated]
    if shape.guestLevels > 0 { expected.formUnion([.pageFault, .generalProtection]) }
    switch shape.nested {
    case .none: break
    case .ept: expected.formUnion([.eptViolation, .eptMisconfiguration])
    case .npt: expected.insert(.nestedPageFault)
    }
    #expect(kinds.isSuperset(of: expected), "\(shape) reached only \(kinds)")
  }

  struct Comparison {
    var compared = 0
    var kinds = Set<OutcomeKind>()
    var mismatches: [String] = []
  }

  /// Which inputs a state's symbolic walk leaves as variables. Every profile must agree: the
  /// all-symbolic one exercises the formulas, the others the constant folding that makes the
  /// prover's partly concrete queries small.
  struct Profile {
    var parts: SymbolicMachine.Parts
    /// Whether the linear address and the access are variables (else constants, and the
    /// symbolic walk is rebuilt for each triple).
    var symbolicAccess: Bool

    static let all = [
      Profile(parts: [.registers, .memory], symbolicAccess: true),
      Profile(parts: [.registers], symbolicAccess: true),
      Profile(parts: [.memory], symbolicAccess: true),
      Profile(parts: [], symbolicAccess: true),
      Profile(parts: [], symbolicAccess: false),
    ]
  }

  func compare(_ random: RandomMachine, seed: UInt64) throws -> Comparison {
    let profile = Profile.all[Int(seed % UInt64(Profile.all.count))]
    let concrete = try ConcreteModel(random.state)
    let context = Context()
    let machine = try SymbolicMachine(random.state, context: context, symbolic: profile.parts)
    let d = machine.domain
    let variables = (
      linear: d.variable("linear"), write: d.flagVariable("write"),
      fetch: d.flagVariable("fetch"), user: d.flagVariable("user"),
      implicit: d.flagVariable("implicit")
    )
    let choiceFlags = (0..<5).map { d.flagVariable("choice\($0)") }
    let choices = Choices<Symbolic>(
      accessedOnFault: choiceFlags[0], accessedDirtyBeforeFinal: choiceFlags[1],
      readBitOnAccessedDirtyWrite: choiceFlags[2], nestedDirtyOnTableRead: choiceFlags[3],
      advancedQualification: choiceFlags[4])
    func symbolicWalk(_ linear: Symbolic.Word, _ access: AccessDescriptor<Symbolic>)
      -> Translation<Symbolic>
    {
      translate(d, machine.state, linear: linear, access: access, choices: choices, recording: true)
    }
    let general =
      profile.symbolicAccess
      ? symbolicWalk(
        variables.linear,
        AccessDescriptor(
          write: variables.write, fetch: variables.fetch, user: variables.user,
          implicit: variables.implicit))
      : nil
    let generalDigests = general.map { SymbolicDigests(d, $0) }
    let base = machine.assignment(random.state)

    var generator = SeededGenerator(seed: seed ^ 0x5EED)
    var result = Comparison()
    for i in 0..<Self.triplesPerState {
      let address =
        i < random.addresses.count * 2
        ? random.addresses[i % random.addresses.count]
        : UInt64.random(in: 0...UInt64.max, using: &generator) & ~7
      let kind = AccessKind.allCases[Int.random(in: 0..<3, using: &generator)]
      let mode = Int.random(in: 0..<3, using: &generator)
      let access = Access(kind, user: mode == 1, implicit: mode == 2)
      let choice = Choices<Concrete>.all[Int.random(in: 0..<32, using: &generator)]
      let expected = concrete.translate(address, access, choices: choice, recording: true)

      let symbolic: Translation<Symbolic>
      let digests: SymbolicDigests
      var assignment = base
      let bit = { (b: Bool) in context.bool(b) }
      if let general, let generalDigests {
        symbolic = general
        digests = generalDigests
        assignment.append((d.term(variables.linear), context.bitVector(address, width: 64)))
        assignment.append((d.term(variables.write), bit(kind == .write)))
        assignment.append((d.term(variables.fetch), bit(kind == .fetch)))
        assignment.append((d.term(variables.user), bit(access.user)))
        assignment.append((d.term(variables.implicit), bit(access.implicit)))
      } else {
        symbolic = symbolicWalk(.constant(address), AccessDescriptor(d, access))
        digests = SymbolicDigests(d, symbolic)
      }
      let choiceValues = [
        choice.accessedOnFault, choice.accessedDirtyBeforeFinal,
        choice.readBitOnAccessedDirtyWrite, choice.nestedDirtyOnTableRead,
        choice.advancedQualification,
      ]
      for (flag, value) in zip(choiceFlags, choiceValues) {
        assignment.append((d.term(flag), bit(value)))
      }
      let model = try context.model(assigning: assignment)
      let got = try digests.evaluate(model)
      let want = concreteDigests(expected)
      result.compared += 1
      result.kinds.insert(OutcomeKind(rawValue: expected.kind) ?? .translated)
      if got != want {
        result.mismatches.append(
          try describeMismatch(
            address: address, access: access, symbolic: symbolic, d: d, model: model,
            expected: expected, got: got, want: want))
      }
    }
    return result
  }

  func describeMismatch(
    address: UInt64, access: Access, symbolic: Translation<Symbolic>, d: Symbolic, model: Model,
    expected: Translation<Concrete>, got: Digests, want: Digests
  ) throws -> String {
    func value(_ w: Symbolic.Word) throws -> UInt64 {
      try model.uint64(of: d.term(w), completion: true) ?? 0
    }
    let fields: [(String, Symbolic.Word, UInt64)] = [
      ("kind", symbolic.kind, expected.kind), ("code", symbolic.code, expected.code),
      ("address", symbolic.address, expected.address), ("linear", symbolic.linear, expected.linear),
      ("rule", symbolic.rule, expected.rule), ("stage", symbolic.stage, expected.stage),
      ("level", symbolic.level, expected.level),
      ("references", symbolic.referenceCount, expected.referenceCount),
    ]
    var differing: [String] = []
    for (name, word, concrete) in fields {
      let symbolicValue = try value(word)
      if symbolicValue != concrete {
        differing.append("\(name): symbolic \(hex(symbolicValue)) concrete \(hex(concrete))")
      }
    }
    return "\(hex(address)) \(access): concrete \(expected.outcome); "
      + "digests equal? scalar \(got.scalar == want.scalar) references "
      + "\(got.references == want.references) updates \(got.updates == want.updates); "
      + differing.joined(separator: "; ")
  }
}

/// Three 64-bit digests of a translation: its scalar fields, the sequence of memory references
/// that happened, and the sequence of A/D writes performed.
struct Digests: Equatable {
  var scalar: UInt64
  var references: UInt64
  var updates: UInt64
}

/// One step of a 64-bit FNV-1a-style fold.
func mix(_ h: UInt64, _ x: UInt64) -> UInt64 { (h ^ x) &* 0x0000_0100_0000_01B3 }
let digestSeed: UInt64 = 0xCBF2_9CE4_8422_2325

func flagBits(_ flags: [Bool]) -> UInt64 {
  flags.enumerated().reduce(0) { $0 | ($1.element ? 1 << UInt64($1.offset) : 0) }
}

func concreteDigests(_ t: Translation<Concrete>) -> Digests {
  let rights = flagBits([
    t.guestRights.user, t.guestRights.writable, t.guestRights.executable, t.nestedRights.read,
    t.nestedRights.write, t.nestedRights.execute,
  ])
  let scalars = [
    t.kind, t.code, t.address, t.linear, t.rule, t.stage, t.level, t.referenceCount,
    t.guestPageSize, t.nestedPageSize, t.guestKey, rights,
  ]
  var references = digestSeed
  for r in t.references where r.happened {
    references = mix(mix(mix(references, structure(r)), r.address), r.value)
  }
  var updates = digestSeed
  for u in t.updates where u.happens {
    updates = mix(mix(mix(updates, UInt64(u.level) << 8 | u.stage.rawValue), u.address), u.bits)
  }
  return Digests(scalar: scalars.reduce(digestSeed, mix), references: references, updates: updates)
}

func structure<D>(_ r: MemoryReference<D>) -> UInt64 {
  r.stage.rawValue << 16 | UInt64(r.level) << 8 | UInt64(r.guestLevel)
}

/// The same digests as terms over the symbolic translation, so one model evaluation each
/// compares a whole translation.
struct SymbolicDigests {
  let scalar: Term
  let references: Term
  let updates: Term

  init(_ d: Symbolic, _ t: Translation<Symbolic>) {
    let c = d.context
    func mixTerm(_ h: Term, _ x: Term) -> Term {
      h.bitwiseXor(x) &* c.bitVector(0x0000_0100_0000_01B3, width: 64)
    }
    func word(_ f: Symbolic.Flag, _ bit: Int) -> Term {
      d.term(d.select(f, d.word(1 << UInt64(bit)), d.word(0)))
    }
    let flags = [
      t.guestRights.user, t.guestRights.writable, t.guestRights.executable, t.nestedRights.read,
      t.nestedRights.write, t.nestedRights.execute,
    ]
    let rights = flags.enumerated().map { word($1, $0) }.reduce(c.bitVector(0, width: 64)) {
      $0.bitwiseOr($1)
    }
    let scalars =
      [
        t.kind, t.code, t.address, t.linear, t.rule, t.stage, t.level, t.referenceCount,
        t.guestPageSize, t.nestedPageSize, t.guestKey,
      ].map { d.term($0) } + [rights]
    let seed = c.bitVector(digestSeed, width: 64)
    scalar = scalars.reduce(seed, mixTerm)
    var references = seed
    for r in t.references {
      let next = mixTerm(
        mixTerm(mixTerm(references, c.bitVector(structure(r), width: 64)), d.term(r.address)),
        d.term(r.value))
      references = c.ifThenElse(d.term(r.happened), then: next, else: references)
    }
    self.references = references
    var updates = seed
    for u in t.updates {
      let shape = c.bitVector(UInt64(u.level) << 8 | u.stage.rawValue, width: 64)
      let next = mixTerm(mixTerm(mixTerm(updates, shape), d.term(u.address)), d.term(u.bits))
      updates = c.ifThenElse(d.term(u.happens), then: next, else: updates)
    }
    self.updates = updates
  }

  func evaluate(_ model: Model) throws -> Digests {
    Digests(
      scalar: try model.uint64(of: scalar, completion: true) ?? 0,
      references: try model.uint64(of: references, completion: true) ?? 0,
      updates: try model.uint64(of: updates, completion: true) ?? 0)
  }
}
