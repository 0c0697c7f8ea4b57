/// Bit-vector operations with sorts checked in Swift: misuse (a Boolean operand, mismatched
/// widths, terms from two contexts) is a programming error and stops with a precondition
/// message. To build terms from untrusted data, use ``Context/apply(_:to:)``, which throws.
///
/// Arithmetic is modulo 2^width, and every comparison and shift is *unsigned*; the names say so.
extension Term {
  /// This term's width; stops if it is not a bit-vector.
  func requireWidth(_ operation: StaticString) -> Int {
    guard let width else { preconditionFailure("\(operation) needs a bit-vector, got \(sort)") }
    return width
  }

  /// The common width of `self` and `other`; stops if either is not a bit-vector or they differ.
  func commonWidth(_ other: Term, _ operation: StaticString) -> Int {
    let width = requireWidth(operation)
    precondition(
      other.width == width, "\(operation) needs equal widths, got \(sort) and \(other.sort)")
    return width
  }

  private func sameWidth(_ operation: TermOperation, _ other: Term, _ name: StaticString) -> Term {
    let width = commonWidth(other, name)
    return context.build(operation, self, other, sort: .bitVector(width: width))
  }

  private func comparison(_ operation: TermOperation, _ other: Term, _ name: StaticString) -> Term {
    _ = commonWidth(other, name)
    return context.build(operation, self, other, sort: .bool)
  }

  /// Bitwise and (`bvand`).
  public func bitwiseAnd(_ other: Term) -> Term { sameWidth(.bitwiseAnd, other, "bitwiseAnd") }

  /// Bitwise or (`bvor`).
  public func bitwiseOr(_ other: Term) -> Term { sameWidth(.bitwiseOr, other, "bitwiseOr") }

  /// Bitwise exclusive or (`bvxor`).
  public func bitwiseXor(_ other: Term) -> Term { sameWidth(.bitwiseXor, other, "bitwiseXor") }

  /// Bitwise complement (`bvnot`).
  public func bitwiseNot() -> Term {
    let width = requireWidth("bitwiseNot")
    return context.build(.bitwiseNot, self, sort: .bitVector(width: width))
  }

  /// Sum modulo 2^width (`bvadd`).
  public func adding(_ other: Term) -> Term { sameWidth(.add, other, "adding") }

  /// Difference modulo 2^width (`bvsub`).
  public func subtracting(_ other: Term) -> Term { sameWidth(.subtract, other, "subtracting") }

  /// Product modulo 2^width (`bvmul`).
  public func multiplied(by other: Term) -> Term { sameWidth(.multiply, other, "multiplied") }

  /// This term shifted left by the bit-vector `amount` (same width); zero once `amount`
  /// reaches the width (`bvshl`).
  public func shiftedLeft(by amount: Term) -> Term {
    sameWidth(.shiftLeft, amount, "shiftedLeft")
  }

  /// This term shifted right by the bit-vector `amount` (same width), filling with zeros;
  /// zero once `amount` reaches the width (`bvlshr`).
  public func logicalShiftedRight(by amount: Term) -> Term {
    sameWidth(.logicalShiftRight, amount, "logicalShiftedRight")
  }

  /// This term shifted left by a constant number of bits; zero once `bits` reaches the width.
  public func shiftedLeft(by bits: Int) -> Term {
    shifted(.shiftLeft, bits, "shiftedLeft")
  }

  /// This term shifted right by a constant number of bits, filling with zeros; zero once
  /// `bits` reaches the width.
  public func logicalShiftedRight(by bits: Int) -> Term {
    shifted(.logicalShiftRight, bits, "logicalShiftedRight")
  }

  private func shifted(_ operation: TermOperation, _ bits: Int, _ name: StaticString) -> Term {
    let width = requireWidth(name)
    precondition(bits >= 0, "\(name) by a negative amount")
    // An amount >= width may not fit in `width` bits; the result is zero by definition.
    if bits >= width { return context.zero(width: width) }
    let amount = context.numeral(UInt64(bits), width: width)
    return context.build(operation, self, amount, sort: .bitVector(width: width))
  }

  /// Bits `high` down to `low` inclusive, as a bit-vector of `high - low + 1` bits
  /// (`(_ extract high low)`); requires `width > high >= low >= 0`.
  public func extract(high: Int, low: Int) -> Term {
    let width = requireWidth("extract")
    precondition(0 <= low && low <= high && high < width, "extract(\(high), \(low)) of \(sort)")
    return context.build(
      .extract(high: high, low: low), self, sort: .bitVector(width: high - low + 1))
  }

  /// This term widened by `bits` zero bits on the left (`(_ zero_extend bits)`).
  public func zeroExtended(by bits: Int) -> Term {
    let width = requireWidth("zeroExtended")
    precondition(bits >= 0, "zeroExtended by a negative amount")
    if bits == 0 { return self }
    return context.build(.zeroExtend(bits: bits), self, sort: .bitVector(width: width + bits))
  }

  /// This term zero-extended to `width` bits, which must be at least its own width.
  public func zeroExtended(toWidth newWidth: Int) -> Term {
    let width = requireWidth("zeroExtended")
    precondition(newWidth >= width, "cannot zero-extend \(sort) to \(newWidth) bits")
    return zeroExtended(by: newWidth - width)
  }

  /// This term's bits followed by `low`'s: `self` becomes the high part (`concat`).
  public func concatenated(with low: Term) -> Term {
    let width = requireWidth("concatenated")
    let lowWidth = low.requireWidth("concatenated")
    return context.build(.concat, self, low, sort: .bitVector(width: width + lowWidth))
  }

  /// Unsigned `self < other` (`bvult`).
  public func unsignedLessThan(_ other: Term) -> Term {
    comparison(.unsignedLessThan, other, "unsignedLessThan")
  }

  /// Unsigned `self <= other` (`bvule`).
  public func unsignedLessThanOrEqual(_ other: Term) -> Term {
    comparison(.unsignedLessThanOrEqual, other, "unsignedLessThanOrEqual")
  }

  /// Unsigned `self > other` (`bvugt`).
  public func unsignedGreaterThan(_ other: Term) -> Term {
    comparison(.unsignedGreaterThan, other, "unsignedGreaterThan")
  }

  /// Unsigned `self >= other` (`bvuge`).
  public func unsignedGreaterThanOrEqual(_ other: Term) -> Term {
    comparison(.unsignedGreaterThanOrEqual, other, "unsignedGreaterThanOrEqual")
  }

  /// Bitwise and of two bit-vectors of one width; same as ``bitwiseAnd(_:)``.
  public static func & (lhs: Term, rhs: Term) -> Term { lhs.bitwiseAnd(rhs) }

  /// Bitwise or of two bit-vectors of one width; same as ``bitwiseOr(_:)``.
  public static func | (lhs: Term, rhs: Term) -> Term { lhs.bitwiseOr(rhs) }

  /// Bitwise exclusive or of two bit-vectors of one width; same as ``bitwiseXor(_:)``.
  public static func ^ (lhs: Term, rhs: Term) -> Term { lhs.bitwiseXor(rhs) }

  /// Bitwise complement of a bit-vector; same as ``bitwiseNot()``.
  public static prefix func ~ (operand: Term) -> Term { operand.bitwiseNot() }

  /// Wrapping (modulo 2^width) sum, as Swift's `&+` is for fixed-width integers.
  public static func &+ (lhs: Term, rhs: Term) -> Term { lhs.adding(rhs) }

  /// Wrapping (modulo 2^width) difference, as Swift's `&-` is for fixed-width integers.
  public static func &- (lhs: Term, rhs: Term) -> Term { lhs.subtracting(rhs) }

  /// Wrapping (modulo 2^width) product, as Swift's `&*` is for fixed-width integers.
  public static func &* (lhs: Term, rhs: Term) -> Term { lhs.multiplied(by: rhs) }
}

extension Context {
  /// A numeral that may be wider than 64 bits, from a value that fits in 64.
  func numeral(_ value: UInt64, width: Int) -> Term {
    width <= 64
      ? bitVector(value, width: width) : bitVector(value, width: 64).zeroExtended(toWidth: width)
  }

  /// The all-zero bit-vector of any width.
  func zero(width: Int) -> Term { numeral(0, width: width) }
}
