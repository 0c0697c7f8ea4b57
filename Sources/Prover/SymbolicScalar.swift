import ReferenceModel
import Z3

/// The operations of ``Symbolic`` on one value (no lanes): constants fold, known high bits
/// stay known (``Symbolic/Word/partial(high:width:low:)``), and terms are made only for the
/// bits that are really symbolic.
extension Symbolic {
  /// A scalar word seen as known high bits over a symbolic low part: a constant has width 0
  /// and no low part; a term has width 64 and no known bits.
  struct Split {
    var high: UInt64
    var width: Int
    var low: Term?
  }

  func split(_ w: Word) -> Split {
    switch w {
    case .constant(let v): return Split(high: v, width: 0, low: nil)
    case .term(let t): return Split(high: 0, width: 64, low: t)
    case .partial(let high, let width, let low): return Split(high: high, width: width, low: low)
    case .lanes, .mixed: preconditionFailure("split of a lane-wise word")
    }
  }

  /// The low `width` bits of `s` as a `width`-bit term (`s.width <= width`).
  func lowTerm(_ s: Split, width: Int) -> Term {
    if s.width == width, let low = s.low { return low }
    let known = (s.high & mask(width: width)) >> UInt64(s.width)
    guard let low = s.low else { return context.bitVector(known, width: width) }
    return context.bitVector(known, width: width - s.width).concatenated(with: low)
  }

  /// The word with known bits `high` above `width` and the `width`-bit term `low` below.
  func make(_ high: UInt64, _ width: Int, _ low: Term?) -> Word {
    guard let low else { return .constant(high) }
    if width >= 64 { return .term(low) }
    return .partial(high: high & ~mask(width: width), width: width, low: low)
  }

  /// One of the three bitwise operators.
  enum Bitwise { case and, or, xor }

  func bitwise(_ a: Word, _ b: Word, _ op: Bitwise) -> Word {
    let sa = split(a)
    let sb = split(b)
    let width = max(sa.width, sb.width)
    let keep = ~mask(width: width)
    func apply(_ x: UInt64, _ y: UInt64) -> UInt64 {
      switch op {
      case .and: x & y
      case .or: x | y
      case .xor: x ^ y
      }
    }
    let high = apply(sa.high & keep, sb.high & keep)
    // One side constant: fold by the constant's low bits.
    if sa.low == nil || sb.low == nil {
      let (c, other) = sa.low == nil ? (sa.high, sb) : (sb.high, sa)
      let low = c & mask(width: width)
      let symbolic = lowTerm(other, width: width)
      switch op {
      case .and:
        if low == 0 { return .constant(high) }
        if low == mask(width: width) { return make(high, width, symbolic) }
        return make(high, width, symbolic.bitwiseAnd(context.bitVector(low, width: width)))
      case .or:
        if low == 0 { return make(high, width, symbolic) }
        if low == mask(width: width) { return .constant(high | low) }
        return make(high, width, symbolic.bitwiseOr(context.bitVector(low, width: width)))
      case .xor:
        if low == 0 { return make(high, width, symbolic) }
        return make(high, width, symbolic.bitwiseXor(context.bitVector(low, width: width)))
      }
    }
    let x = lowTerm(sa, width: width)
    let y = lowTerm(sb, width: width)
    switch op {
    case .and: return make(high, width, x == y ? x : x.bitwiseAnd(y))
    case .or: return make(high, width, x == y ? x : x.bitwiseOr(y))
    case .xor: return x == y ? .constant(high) : make(high, width, x.bitwiseXor(y))
    }
  }

  func scalarAnd(_ a: Word, _ b: Word) -> Word { bitwise(a, b, .and) }
  func scalarOr(_ a: Word, _ b: Word) -> Word { bitwise(a, b, .or) }
  func scalarXor(_ a: Word, _ b: Word) -> Word { bitwise(a, b, .xor) }

  func scalarNot(_ a: Word) -> Word {
    switch a {
    case .constant(let v): return .constant(~v)
    case .term(let t): return .term(t.bitwiseNot())
    case .partial(let high, let width, let low):
      return .partial(high: ~high & ~mask(width: width), width: width, low: low.bitwiseNot())
    case .lanes, .mixed: preconditionFailure("scalarNot of a lane-wise word")
    }
  }

  func scalarAdd(_ a: Word, _ b: Word) -> Word {
    switch (a, b) {
    case (.constant(let x), .constant(let y)): return .constant(x &+ y)
    case (.constant(0), let other), (let other, .constant(0)): return other
    case (.partial(let high, let width, let low), .constant(let c)),
      (.constant(let c), .partial(let high, let width, let low)):
      // No carry can cross from the symbolic part when the constant's low bits are zero.
      if c & mask(width: width) == 0 { return .partial(high: high &+ c, width: width, low: low) }
      return .term(term(a) &+ term(b))
    default: return .term(term(a) &+ term(b))
    }
  }

  func scalarShiftLeft(_ a: Word, _ bits: Int) -> Word {
    if bits == 0 { return a }
    if bits >= 64 { return .constant(0) }
    switch a {
    case .constant(let v): return .constant(v << UInt64(bits))
    case .term(let t): return .term(t.shiftedLeft(by: bits))
    case .partial(let high, let width, let low):
      let zeros = context.bitVector(0, width: bits)
      if width + bits <= 63 {
        return .partial(
          high: high << UInt64(bits), width: width + bits, low: low.concatenated(with: zeros))
      }
      // The known bits leave the word; what stays is the low part's bottom 64 − bits bits.
      return .term(low.extract(high: 63 - bits, low: 0).concatenated(with: zeros))
    case .lanes, .mixed: preconditionFailure("scalarShiftLeft of a lane-wise word")
    }
  }

  func scalarShiftRight(_ a: Word, _ bits: Int) -> Word {
    if bits == 0 { return a }
    if bits >= 64 { return .constant(0) }
    switch a {
    case .constant(let v): return .constant(v >> UInt64(bits))
    case .term(let t):
      // The top `bits` bits become known zeros.
      return .partial(high: 0, width: 64 - bits, low: t.extract(high: 63, low: bits))
    case .partial(let high, let width, let low):
      if bits >= width { return .constant(high >> UInt64(bits)) }
      return .partial(
        high: high >> UInt64(bits), width: width - bits,
        low: low.extract(high: width - 1, low: bits))
    case .lanes, .mixed: preconditionFailure("scalarShiftRight of a lane-wise word")
    }
  }

  func scalarEqual(_ a: Word, _ b: Word) -> Flag {
    let sa = split(a)
    let sb = split(b)
    if sa.low == nil && sb.low == nil { return .constant(sa.high == sb.high) }
    let width = max(sa.width, sb.width)
    let keep = ~mask(width: width)
    if sa.high & keep != sb.high & keep { return .constant(false) }
    if sa.low == nil || sb.low == nil {
      let (c, other) = sa.low == nil ? (sa.high, sb) : (sb.high, sa)
      let value = c & mask(width: width)
      let symbolic = lowTerm(other, width: width)
      if facts.excludes(symbolic, value) { return .constant(false) }
      return resolve(symbolic.equals(context.bitVector(value, width: width)))
    }
    let x = lowTerm(sa, width: width)
    let y = lowTerm(sb, width: width)
    return x == y ? .constant(true) : resolve(x.equals(y))
  }

  func scalarLess(_ a: Word, _ b: Word) -> Flag {
    let sa = split(a)
    let sb = split(b)
    if sa.low == nil && sb.low == nil { return .constant(sa.high < sb.high) }
    let width = max(sa.width, sb.width)
    let keep = ~mask(width: width)
    if sa.high & keep < sb.high & keep { return .constant(true) }
    if sa.high & keep > sb.high & keep { return .constant(false) }
    let x = lowTerm(sa, width: width)
    let y = lowTerm(sb, width: width)
    return x == y ? .constant(false) : resolve(x.unsignedLessThan(y))
  }

  func scalarSelect(_ condition: Term, _ a: Word, _ b: Word) -> Word {
    if case .constant(let x) = a, case .constant(let y) = b, x == y { return a }
    let sa = split(a)
    let sb = split(b)
    var width = max(sa.width, sb.width)
    if sa.low == nil && sb.low == nil {
      // Two constants: the bits above their highest difference are known.
      width = 64 - (sa.high ^ sb.high).leadingZeroBitCount
    }
    let keep = ~mask(width: width)
    guard width < 64, sa.high & keep == sb.high & keep else {
      return .term(context.ifThenElse(condition, then: term(a), else: term(b)))
    }
    let x = lowTerm(sa, width: width)
    let y = lowTerm(sb, width: width)
    if x == y { return make(sa.high, width, x) }
    return make(sa.high, width, context.ifThenElse(condition, then: x, else: y))
  }
}
