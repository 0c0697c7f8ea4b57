/// The abstract bit-vector domain the reference semantics is written over (DESIGN.md, "one
/// model, two interpretations").
///
/// Every rule of the model is a function generic over a domain. ``Concrete`` interprets it with
/// `UInt64` and `Bool` and is the executable oracle; the prover's symbolic domain interprets it
/// with Z3 terms, so the same rules become formulas. There is no second copy of any rule.
///
/// Branching on a domain value is written with ``select(_:_:_:)``; loops run over a fixed
/// number of paging levels, so every walk is finite in both interpretations. ``known(_:)`` lets
/// a walk stop early when a flag has a definite value (always, concretely), without changing
/// what the walk computes.
///
/// Word and flag operations have distinct names (`bitAnd` versus `and`) so that a domain may
/// use one Swift type for both without ambiguity.
public protocol BitVectorDomain {
  /// A 64-bit value.
  associatedtype Word
  /// A truth value.
  associatedtype Flag
  /// Host physical memory as the walk reads it.
  associatedtype Memory

  /// The 64-bit constant `value`.
  func word(_ value: UInt64) -> Word
  /// The truth value `value`.
  func flag(_ value: Bool) -> Flag

  /// Bitwise and.
  func bitAnd(_ a: Word, _ b: Word) -> Word
  /// Bitwise or.
  func bitOr(_ a: Word, _ b: Word) -> Word
  /// Bitwise exclusive or.
  func bitXor(_ a: Word, _ b: Word) -> Word
  /// Bitwise complement.
  func bitNot(_ a: Word) -> Word
  /// Addition modulo 2^64.
  func add(_ a: Word, _ b: Word) -> Word
  /// Shift left by a constant number of bits (0…63).
  func shiftLeft(_ a: Word, _ bits: Int) -> Word
  /// Logical (unsigned) shift right by a constant number of bits (0…63).
  func shiftRight(_ a: Word, _ bits: Int) -> Word
  /// Logical shift right by a domain-valued number of bits; 64 or more gives zero.
  func shiftRight(_ a: Word, by amount: Word) -> Word
  /// Whether the two words are equal.
  func equal(_ a: Word, _ b: Word) -> Flag
  /// Whether `a < b` as unsigned numbers.
  func unsignedLess(_ a: Word, _ b: Word) -> Flag

  /// Conjunction.
  func and(_ a: Flag, _ b: Flag) -> Flag
  /// Disjunction.
  func or(_ a: Flag, _ b: Flag) -> Flag
  /// Negation.
  func not(_ a: Flag) -> Flag

  /// `condition ? a : b` on words.
  func select(_ condition: Flag, _ a: Word, _ b: Word) -> Word
  /// `condition ? a : b` on flags.
  func select(_ condition: Flag, _ a: Flag, _ b: Flag) -> Flag

  /// The 64-bit word at an 8-byte-aligned host physical address; zero where nothing is stored.
  func load(_ memory: Memory, _ address: Word) -> Word

  /// The flag's value if it is definite in this interpretation, else `nil`. Concretely every
  /// flag is definite; symbolically only constants are.
  func known(_ flag: Flag) -> Bool?
}

// MARK: - Derived operations, written once for every domain

extension BitVectorDomain {
  /// `true`.
  @inline(__always) public var yes: Flag { flag(true) }
  /// `false`.
  @inline(__always) public var no: Flag { flag(false) }

  /// Whether the word is zero.
  @inline(__always) public func isZero(_ a: Word) -> Flag { equal(a, word(0)) }

  /// `a & mask` with a constant mask.
  @inline(__always) public func masked(_ a: Word, _ mask: UInt64) -> Word {
    bitAnd(a, word(mask))
  }

  /// Whether any bit of the constant `mask` is set in `a`.
  @inline(__always) public func anySet(_ a: Word, _ mask: UInt64) -> Flag {
    not(isZero(masked(a, mask)))
  }

  /// Whether bit `index` of `a` is set.
  @inline(__always) public func bit(_ a: Word, _ index: Int) -> Flag {
    anySet(a, 1 << UInt64(index))
  }

  /// Bits `high` through `low` of `a`, shifted down to bit 0.
  @inline(__always) public func field(_ a: Word, _ high: Int, _ low: Int) -> Word {
    masked(shiftRight(a, low), mask(width: high - low + 1))
  }

  /// Whether bits `high…low` of `a` equal the constant `value`.
  @inline(__always) public func fieldIs(_ a: Word, _ high: Int, _ low: Int, _ value: UInt64)
    -> Flag
  {
    equal(field(a, high, low), word(value))
  }

  /// The constant `1 << index` where the flag holds, else zero: places a flag at a bit.
  @inline(__always) public func bits(_ f: Flag, at index: Int) -> Word {
    select(f, word(1 << UInt64(index)), word(0))
  }

  /// The constant `value` where the flag holds, else zero.
  @inline(__always) public func when(_ f: Flag, _ value: UInt64) -> Word {
    select(f, word(value), word(0))
  }

  /// `a | b | …`.
  @inline(__always) public func bitOr(_ a: Word, _ b: Word, _ rest: Word...) -> Word {
    rest.reduce(bitOr(a, b), bitOr)
  }

  /// Conjunction of all flags (`true` for none).
  @inline(__always) public func all(_ flags: Flag...) -> Flag { flags.reduce(yes, and) }
  /// Disjunction of all flags (`false` for none).
  @inline(__always) public func any(_ flags: Flag...) -> Flag { flags.reduce(no, or) }

  /// `a ⇒ b`.
  @inline(__always) public func implies(_ a: Flag, _ b: Flag) -> Flag { or(not(a), b) }

  /// Whether a flag is definitely `true` in this interpretation.
  @inline(__always) public func isCertainlyTrue(_ f: Flag) -> Bool { known(f) == true }
  /// Whether a flag is definitely `false` in this interpretation.
  @inline(__always) public func isCertainlyFalse(_ f: Flag) -> Bool { known(f) == false }
}

/// The constant with bits `width − 1 … 0` set; zero for a width of zero or less.
@inline(__always) public func mask(width: Int) -> UInt64 {
  width >= 64 ? ~0 : width <= 0 ? 0 : (1 &<< UInt64(truncatingIfNeeded: width)) &- 1
}

/// The constant with bits `high … low` set (inclusive, `low ≥ 0`); zero when `high < low`.
@inline(__always) public func mask(_ high: Int, _ low: Int) -> UInt64 {
  precondition(low >= 0, "bit positions are not negative")
  return high < low || low >= 64
    ? 0 : mask(width: high &- low &+ 1) &<< UInt64(truncatingIfNeeded: low)
}
