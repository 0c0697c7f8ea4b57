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
public struct Symbolic: BitVectorDomain {
  /// The Z3 context every term of this domain lives in.
  public let context: Context

  /// A domain over `context`.
  public init(context: Context) { self.context = context }

  /// A 64-bit value: a constant, or a term.
  public enum Word {
    /// A known value.
    case constant(UInt64)
    /// A 64-bit bit-vector term.
    case term(Term)
  }

  /// A truth value: a constant, or a Boolean term.
  public enum Flag {
    /// A known value.
    case constant(Bool)
    /// A Boolean term.
    case term(Term)
  }

  /// The word as a term (numerals for constants).
  public func term(_ w: Word) -> Term {
    switch w {
    case .constant(let v): context.bitVector(v, width: 64)
    case .term(let t): t
    }
  }

  /// The flag as a term.
  public func term(_ f: Flag) -> Term {
    switch f {
    case .constant(let b): context.bool(b)
    case .term(let t): t
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

  /// Bitwise and; folds constants and the identities `x & 0 = 0`, `x & ~0 = x`.
  public func bitAnd(_ a: Word, _ b: Word) -> Word {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): return .constant(x & y)
    case (.constant(0), _), (_, .constant(0)): return .constant(0)
    case (.constant(~0), let other), (let other, .constant(~0)): return other
    default: return .term(term(a).bitwiseAnd(term(b)))
    }
  }

  /// Bitwise or; folds constants and `x | 0 = x`.
  public func bitOr(_ a: Word, _ b: Word) -> Word {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): return .constant(x | y)
    case (.constant(0), let other), (let other, .constant(0)): return other
    default: return .term(term(a).bitwiseOr(term(b)))
    }
  }

  /// Bitwise exclusive or; folds constants.
  public func bitXor(_ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x ^ y) }
    return .term(term(a).bitwiseXor(term(b)))
  }

  /// Bitwise complement; folds constants.
  public func bitNot(_ a: Word) -> Word {
    if case .constant(let x) = a { return .constant(~x) }
    return .term(term(a).bitwiseNot())
  }

  /// Addition modulo 2^64; folds constants and `x + 0 = x`.
  public func add(_ a: Word, _ b: Word) -> Word {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): return .constant(x &+ y)
    case (.constant(0), let other), (let other, .constant(0)): return other
    default: return .term(term(a) &+ term(b))
    }
  }

  /// Shift left by a constant.
  public func shiftLeft(_ a: Word, _ bits: Int) -> Word {
    if case .constant(let x) = a { return .constant(x << UInt64(bits)) }
    return bits == 0 ? a : .term(term(a).shiftedLeft(by: bits))
  }

  /// Logical shift right by a constant.
  public func shiftRight(_ a: Word, _ bits: Int) -> Word {
    if case .constant(let x) = a { return .constant(x >> UInt64(bits)) }
    return bits == 0 ? a : .term(term(a).logicalShiftedRight(by: bits))
  }

  /// Logical shift right by a word; 64 or more gives zero (as `bvlshr` does).
  public func shiftRight(_ a: Word, by amount: Word) -> Word {
    switch (a, amount) {
    case (.constant(let x), .constant(let n)): return .constant(n >= 64 ? 0 : x >> n)
    case (_, .constant(let n)): return n >= 64 ? .constant(0) : shiftRight(a, Int(n))
    default: return .term(term(a).logicalShiftedRight(by: term(amount)))
    }
  }

  /// Equality; folds constants.
  public func equal(_ a: Word, _ b: Word) -> Flag {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x == y) }
    return .term(term(a).equals(term(b)))
  }

  /// Unsigned less-than; folds constants.
  public func unsignedLess(_ a: Word, _ b: Word) -> Flag {
    if case .constant(let x) = a, case .constant(let y) = b { return .constant(x < y) }
    return .term(term(a).unsignedLessThan(term(b)))
  }

  /// Conjunction; folds constants.
  public func and(_ a: Flag, _ b: Flag) -> Flag {
    switch (a, b) {
    case (.constant(false), _), (_, .constant(false)): return .constant(false)
    case (.constant(true), let other), (let other, .constant(true)): return other
    case (.term(let x), .term(let y)): return .term(x.and(y))
    }
  }

  /// Disjunction; folds constants.
  public func or(_ a: Flag, _ b: Flag) -> Flag {
    switch (a, b) {
    case (.constant(true), _), (_, .constant(true)): return .constant(true)
    case (.constant(false), let other), (let other, .constant(false)): return other
    case (.term(let x), .term(let y)): return .term(x.or(y))
    }
  }

  /// Negation; folds constants.
  public func not(_ a: Flag) -> Flag {
    switch a {
    case .constant(let b): .constant(!b)
    case .term(let t): .term(t.not())
    }
  }

  /// `condition ? a : b` on words; folds a known condition and equal branches.
  public func select(_ condition: Flag, _ a: Word, _ b: Word) -> Word {
    switch (condition, a, b) {
    case (.constant(let c), _, _): return c ? a : b
    case (_, .constant(let x), .constant(let y)) where x == y: return a
    case (.term(let c), _, _): return .term(context.ifThenElse(c, then: term(a), else: term(b)))
    }
  }

  /// `condition ? a : b` on flags; folds a known condition and constant branches.
  public func select(_ condition: Flag, _ a: Flag, _ b: Flag) -> Flag {
    switch (condition, a, b) {
    case (.constant(let c), _, _): return c ? a : b
    case (_, .constant(true), .constant(false)): return condition
    case (_, .constant(false), .constant(true)): return not(condition)
    case (_, .constant(let x), .constant(let y)) where x == y: return a
    case (.term(let c), _, _): return .term(context.ifThenElse(c, then: term(a), else: term(b)))
    }
  }

  /// The word at `address`: see ``SymbolicMemory/load(_:_:)``.
  public func load(_ memory: SymbolicMemory, _ address: Word) -> Word {
    memory.load(self, address)
  }

  /// The flag's value if it is a constant (or a term Z3 already knows to be true or false).
  public func known(_ flag: Flag) -> Bool? {
    switch flag {
    case .constant(let b): b
    case .term(let t): t.boolValue
    }
  }
}
