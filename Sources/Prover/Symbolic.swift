import ReferenceModel
import Z3

/// The symbolic interpretation of the reference model: words are 64-bit Z3 bit-vector terms,
/// flags Z3 Booleans, memory a ``SymbolicMemory``. Running the model's one generic definition
/// in this domain turns a walk into a formula (DESIGN.md, "one model, two interpretations").
///
/// Values that are known stay Swift constants and fold as they are combined, so the parts of a
/// state that are concrete (the usual case: tables given, address symbolic) cost no solver
/// terms, and ``known(_:)`` lets the walk skip what is certainly unreachable — exactly as the
/// concrete interpretation would. Terms are made only where a symbolic value flows.
///
/// Three refinements keep the prover's queries small (docs/prover.md, "Encoding"):
///
/// - **Partial words** (``Word/partial(high:width:low:)``): bits from `width` up are known, the
///   rest is a term. An address whose table frame is known but whose index is symbolic stays
///   one, so a read through it is an if-then-else over that table's populated words only.
/// - **Lanes** (``Word/lanes(_:)``, ``Word/mixed(_:)``): one walk evaluates many independent
///   problems at once, one per lane (the prover gives each lane its own guest virtual page).
///   A lane-wise value is a plain array of per-lane values; uniform values stay scalars. This
///   is only a way to evaluate many walks in one pass: lane `i` of every result is exactly
///   what a walk over lane `i`'s inputs alone would give.
/// - **Facts** (``SymbolicFacts``): a path condition the caller asserts alongside every query
///   (an index lies outside a set, a flag holds). Terms the facts decide fold to constants.
public struct Symbolic: BitVectorDomain {
  /// The Z3 context every term of this domain lives in.
  public let context: Context
  /// The path condition folded into terms as they are made; empty by default.
  public let facts: SymbolicFacts

  /// A domain over `context`, with no facts.
  public init(context: Context) {
    self.context = context
    self.facts = SymbolicFacts()
  }

  /// A domain over `context` that folds terms `facts` decide.
  public init(context: Context, facts: SymbolicFacts) {
    self.context = context
    self.facts = facts
  }

  /// A 64-bit value.
  public enum Word {
    /// A known value.
    case constant(UInt64)
    /// A 64-bit bit-vector term.
    case term(Term)
    /// Bits 63…`width` are `high` (whose bits below `width` are zero); bits `width − 1`…0 are
    /// the `width`-bit term `low`. `width` is 1…63.
    case partial(high: UInt64, width: Int, low: Term)
    /// One known value per lane.
    case lanes([UInt64])
    /// One value per lane, each a `constant`, `term` or `partial`.
    case mixed([Word])
  }

  /// A truth value.
  public enum Flag {
    /// A known value.
    case constant(Bool)
    /// A Boolean term.
    case term(Term)
    /// One known value per lane.
    case lanes([Bool])
    /// One value per lane, each a `constant` or `term`.
    case mixed([Flag])
  }

  // MARK: - Terms

  /// The word as a 64-bit term (numerals for constants); a lane-wise word has no single term.
  public func term(_ w: Word) -> Term {
    switch w {
    case .constant(let v): return context.bitVector(v, width: 64)
    case .term(let t): return t
    case .partial(let high, let width, let low):
      return context.bitVector(high >> UInt64(width), width: 64 - width).concatenated(with: low)
    case .lanes, .mixed:
      preconditionFailure("a lane-wise word has one term per lane; use lane(_:of:)")
    }
  }

  /// The flag as a term; a lane-wise flag has no single term.
  public func term(_ f: Flag) -> Term {
    switch f {
    case .constant(let b): return context.bool(b)
    case .term(let t): return t
    case .lanes, .mixed:
      preconditionFailure("a lane-wise flag has one term per lane; use lane(_:of:)")
    }
  }

  /// A fresh 64-bit variable.
  public func variable(_ name: String) -> Word { .term(context.bitVectorVariable(name, width: 64)) }

  /// A fresh Boolean variable.
  public func flagVariable(_ name: String) -> Flag { .term(context.boolVariable(name)) }

  /// The constant `value`.
  public func word(_ value: UInt64) -> Word { .constant(value) }
  /// The constant `value`.
  public func flag(_ value: Bool) -> Flag { .constant(value) }

  // MARK: - Words

  /// Bitwise and; folds constants and the identities `x & 0 = 0`, `x & ~0 = x`.
  public func bitAnd(_ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x & y) }
    return lanewise(a, b, { $0 & $1 }, scalarAnd)
  }

  /// Bitwise or; folds constants and `x | 0 = x`.
  public func bitOr(_ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x | y) }
    return lanewise(a, b, { $0 | $1 }, scalarOr)
  }

  /// Bitwise exclusive or; folds constants.
  public func bitXor(_ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x ^ y) }
    return lanewise(a, b, { $0 ^ $1 }, scalarXor)
  }

  /// Bitwise complement; folds constants.
  public func bitNot(_ a: Word) -> Word {
    lanewise(a, { ~$0 }, scalarNot)
  }

  /// Addition modulo 2^64; folds constants and `x + 0 = x`.
  public func add(_ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x &+ y) }
    return lanewise(a, b, { $0 &+ $1 }, scalarAdd)
  }

  /// Shift left by a constant.
  public func shiftLeft(_ a: Word, _ bits: Int) -> Word {
    lanewise(a, { $0 << UInt64(bits) }) { scalarShiftLeft($0, bits) }
  }

  /// Logical shift right by a constant.
  public func shiftRight(_ a: Word, _ bits: Int) -> Word {
    lanewise(a, { $0 >> UInt64(bits) }) { scalarShiftRight($0, bits) }
  }

  /// Logical shift right by a word; 64 or more gives zero (as `bvlshr` does).
  public func shiftRight(_ a: Word, by amount: Word) -> Word {
    lanewise(a, amount, { x, n in n >= 64 ? 0 : x >> n }) { x, n in
      if case .constant(let count) = n {
        return count >= 64 ? .constant(0) : scalarShiftRight(x, Int(count))
      }
      return .term(term(x).logicalShiftedRight(by: term(n)))
    }
  }

  /// Equality; folds constants, known high bits that differ, and facts.
  public func equal(_ a: Word, _ b: Word) -> Flag {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x == y) }
    return lanewiseFlag(a, b, { $0 == $1 }, scalarEqual)
  }

  /// Unsigned less-than; folds constants and known high bits.
  public func unsignedLess(_ a: Word, _ b: Word) -> Flag {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x < y) }
    return lanewiseFlag(a, b, { $0 < $1 }, scalarLess)
  }

  // MARK: - Flags

  /// Conjunction; folds constants.
  public func and(_ a: Flag, _ b: Flag) -> Flag {
    switch (a, b) {
    case (.constant(false), _), (_, .constant(false)): return .constant(false)
    case (.constant(true), let other), (let other, .constant(true)): return other
    case (.term(let x), .term(let y)): return resolve(x.and(y))
    default: return lanewise(a, b, { $0 && $1 }, and)
    }
  }

  /// Disjunction; folds constants.
  public func or(_ a: Flag, _ b: Flag) -> Flag {
    switch (a, b) {
    case (.constant(true), _), (_, .constant(true)): return .constant(true)
    case (.constant(false), let other), (let other, .constant(false)): return other
    case (.term(let x), .term(let y)): return resolve(x.or(y))
    default: return lanewise(a, b, { $0 || $1 }, or)
    }
  }

  /// Negation; folds constants.
  public func not(_ a: Flag) -> Flag {
    switch a {
    case .constant(let b): return .constant(!b)
    case .term(let t): return resolve(t.not())
    case .lanes(let values): return .lanes(values.map { !$0 })
    case .mixed(let values): return normalize(values.map(not))
    }
  }

  /// `condition ? a : b` on words; folds a known condition and equal branches.
  public func select(_ condition: Flag, _ a: Word, _ b: Word) -> Word {
    switch condition {
    case .constant(let c): return c ? a : b
    case .term(let c):
      if case .lanes = a { return selectLanes(condition, a, b) }
      if case .lanes = b { return selectLanes(condition, a, b) }
      if case .mixed = a { return selectLanes(condition, a, b) }
      if case .mixed = b { return selectLanes(condition, a, b) }
      return scalarSelect(c, a, b)
    case .lanes, .mixed:
      return selectLanes(condition, a, b)
    }
  }

  /// `condition ? a : b` on flags; folds a known condition and constant branches.
  public func select(_ condition: Flag, _ a: Flag, _ b: Flag) -> Flag {
    switch (condition, a, b) {
    case (.constant(let c), _, _): return c ? a : b
    case (_, .constant(true), .constant(false)): return condition
    case (_, .constant(false), .constant(true)): return not(condition)
    case (_, .constant(let x), .constant(let y)) where x == y: return a
    case (.term(let c), .term(let x), .term(let y)):
      return resolve(context.ifThenElse(c, then: x, else: y))
    case (.term(let c), .term(let x), .constant(let y)):
      return resolve(context.ifThenElse(c, then: x, else: context.bool(y)))
    case (.term(let c), .constant(let x), .term(let y)):
      return resolve(context.ifThenElse(c, then: context.bool(x), else: y))
    default:
      let n = laneCount(condition, a, b)
      return normalize(
        (0..<n).map { i in select(lane(i, of: condition), lane(i, of: a), lane(i, of: b)) })
    }
  }

  /// The word at `address`: see ``SymbolicMemory``.
  public func load(_ memory: SymbolicMemory, _ address: Word) -> Word {
    memory.load(self, address)
  }

  /// The flag's value if it is a constant (or a term Z3 already knows to be true or false), or
  /// if every lane has the same known value.
  public func known(_ flag: Flag) -> Bool? {
    switch flag {
    case .constant(let b): return b
    case .term(let t): return t.boolValue
    case .lanes(let values):
      guard let first = values.first, values.allSatisfy({ $0 == first }) else { return nil }
      return first
    case .mixed(let values):
      guard let first = values.first.flatMap(known) else { return nil }
      return values.allSatisfy { known($0) == first } ? first : nil
    }
  }

  // MARK: - Facts

  /// A Boolean term, or its constant if the facts decide it.
  func resolve(_ t: Term) -> Flag {
    if facts.isEmpty { return .term(t) }
    if facts.holds.contains(t) { return .constant(true) }
    if facts.fails.contains(t) { return .constant(false) }
    return .term(t)
  }
}

/// A path condition for one query, folded into terms as the domain makes them: Boolean terms
/// known to hold or to fail, and terms known to differ from given values. The prover asserts
/// exactly these facts (``assertions(_:)``) in every query made under them, so folding by them
/// is sound.
public struct SymbolicFacts {
  /// Boolean terms that hold.
  public private(set) var holds: Set<Term> = []
  /// Boolean terms that fail.
  public private(set) var fails: Set<Term> = []
  /// Terms and the values each is known to differ from (of the term's own width).
  public private(set) var excluded: [Term: Set<UInt64>] = [:]

  /// No facts.
  public init() {}

  /// Whether there are no facts.
  public var isEmpty: Bool { holds.isEmpty && fails.isEmpty && excluded.isEmpty }

  /// Records that the Boolean term `t` holds.
  public mutating func assume(_ t: Term) {
    holds.insert(t)
    fails.insert(t.not())
  }

  /// Records that the Boolean term `t` fails.
  public mutating func refute(_ t: Term) {
    fails.insert(t)
    holds.insert(t.not())
  }

  /// Records that the bit-vector term `t` differs from each of `values`.
  public mutating func exclude(_ t: Term, from values: Set<UInt64>) {
    excluded[t, default: []].formUnion(values)
  }

  /// Whether `t` is known to differ from `value`.
  func excludes(_ t: Term, _ value: UInt64) -> Bool {
    excluded[t]?.contains(value) ?? false
  }

  /// The facts as Boolean terms, in a deterministic order, for a query.
  public func assertions(_ context: Context) -> [Term] {
    var result = holds.map { $0 }.sorted { $0.description < $1.description }
    for (t, values) in excluded.sorted(by: { $0.key.description < $1.key.description }) {
      guard let width = t.width else { continue }
      for value in values.sorted() {
        result.append(t.equals(context.bitVector(value, width: width)).not())
      }
    }
    return result
  }
}
