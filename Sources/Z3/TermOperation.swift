import CZ3

/// An operation that builds a term from operand terms, for building terms from data (a parsed
/// expression, a generated test) through ``Context/apply(_:to:)``, which lets Z3 check sorts and
/// throws its errors.
///
/// Typed code should prefer the named methods and operators on ``Term``, which check sorts in
/// Swift.
public enum TermOperation: Hashable, Sendable {
  /// Bitwise and of two bit-vectors of one width (`bvand`).
  case bitwiseAnd
  /// Bitwise or of two bit-vectors of one width (`bvor`).
  case bitwiseOr
  /// Bitwise exclusive or of two bit-vectors of one width (`bvxor`).
  case bitwiseXor
  /// Bitwise complement of one bit-vector (`bvnot`).
  case bitwiseNot
  /// Addition modulo 2^width (`bvadd`).
  case add
  /// Subtraction modulo 2^width (`bvsub`).
  case subtract
  /// Multiplication modulo 2^width (`bvmul`).
  case multiply
  /// Left shift of the first operand by the second; zero once the amount reaches the width
  /// (`bvshl`).
  case shiftLeft
  /// Logical (unsigned, zero-filling) right shift of the first operand by the second
  /// (`bvlshr`).
  case logicalShiftRight
  /// Bits `high` down to `low` (inclusive) of one bit-vector (`(_ extract high low)`).
  case extract(high: Int, low: Int)
  /// One bit-vector widened by `bits` zero bits on the left (`(_ zero_extend bits)`).
  case zeroExtend(bits: Int)
  /// The first bit-vector's bits followed by the second's (`concat`); the first is high.
  case concat
  /// Equality of two terms of one sort (`=`).
  case equal
  /// Pairwise difference of terms of one sort (`distinct`).
  case distinct
  /// Unsigned `<` of two bit-vectors (`bvult`).
  case unsignedLessThan
  /// Unsigned `<=` of two bit-vectors (`bvule`).
  case unsignedLessThanOrEqual
  /// Unsigned `>` of two bit-vectors (`bvugt`).
  case unsignedGreaterThan
  /// Unsigned `>=` of two bit-vectors (`bvuge`).
  case unsignedGreaterThanOrEqual
  /// If the Boolean first operand then the second else the third (`ite`).
  case ifThenElse
  /// Conjunction of any number of Boolean terms (`and`); true when there are none.
  case and
  /// Disjunction of any number of Boolean terms (`or`); false when there are none.
  case or
  /// Negation of one Boolean term (`not`).
  case not
  /// Implication between two Boolean terms (`=>`).
  case implies
  /// Exclusive or of two Boolean terms (`xor`).
  case xor
  /// Equivalence of two Boolean terms (`=` on Booleans).
  case iff

  /// How many operands the operation takes: an exact count, or a minimum for n-ary ones.
  var arity: (count: Int, variadic: Bool) {
    switch self {
    case .bitwiseNot, .not, .extract, .zeroExtend: (1, false)
    case .ifThenElse: (3, false)
    case .and, .or: (0, true)
    case .distinct: (1, true)
    default: (2, false)
    }
  }
}

extension Context {
  /// Applies `operation` to `operands` with no sort checks in Swift: Z3 checks them, and its
  /// errors are thrown (for example a width mismatch is a ``Z3Error``, never an abort).
  ///
  /// Also throws `.invalidArgument` for a wrong operand count, negative or oversized
  /// extract/extend parameters, or operands from another context.
  public func apply(_ operation: TermOperation, to operands: [Term]) throws(Z3Error) -> Term {
    let (count, variadic) = operation.arity
    guard variadic ? operands.count >= count : operands.count == count else {
      let expected = variadic ? "at least \(count)" : "\(count)"
      throw Z3Error(
        code: .invalidArgument,
        message: "\(operation) takes \(expected) operands, got \(operands.count)")
    }
    guard operands.allSatisfy({ $0.context === self }) else {
      throw Z3Error(code: .invalidArgument, message: "\(operation): operand from another context")
    }
    switch operation {
    case .extract(let high, let low) where low < 0 || high < low || high > Int(UInt32.max):
      throw Z3Error(code: .invalidArgument, message: "invalid extract bounds \(high), \(low)")
    case .zeroExtend(let bits) where bits < 0 || bits > Int(UInt32.max):
      throw Z3Error(code: .invalidArgument, message: "invalid zero-extension \(bits)")
    default: break
    }
    let ast = try checked(make(operation, operands.map(\.ast)), "\(operation)")
    return wrap(ast)
  }

  /// Applies a well-sorted operation of one to three operands whose result sort Swift already
  /// computed; a Z3 rejection here is a bug in this layer. (No arrays: this is the hot path.)
  func build(
    _ operation: TermOperation, _ first: Term, _ second: Term? = nil, _ third: Term? = nil,
    sort: Sort
  ) -> Term {
    precondition(
      first.context === self && (second?.context ?? self) === self
        && (third?.context ?? self) === self,
      "\(operation): operands from different contexts")
    guard let ast = make(operation, first.ast, second?.ast, third?.ast) else {
      unexpectedFailure("\(operation)")
    }
    return wrap(ast, sort: sort)
  }

  /// Applies a well-sorted n-ary operation (`and`, `or`, `distinct`); see the other `build`.
  func build(_ operation: TermOperation, _ operands: [Term], sort: Sort) -> Term {
    for operand in operands {
      precondition(operand.context === self, "\(operation): operands from different contexts")
    }
    guard let ast = make(operation, operands.map(\.ast)) else {
      unexpectedFailure("\(operation)")
    }
    return wrap(ast, sort: sort)
  }

  /// `make` for an operand array of the right length.
  private func make(_ operation: TermOperation, _ asts: [Z3_ast]) -> Z3_ast? {
    switch operation {
    case .and, .or, .distinct: makeVariadic(operation, asts)
    default:
      make(
        operation, asts[0], asts.count > 1 ? asts[1] : nil, asts.count > 2 ? asts[2] : nil)
    }
  }

  /// The one mapping from fixed-arity operations to Z3's C constructors; absent operands are
  /// nil. The result has no reference yet and must be wrapped before the next C call.
  private func make(_ operation: TermOperation, _ a: Z3_ast, _ b: Z3_ast?, _ c: Z3_ast?) -> Z3_ast?
  {
    let z = raw
    switch operation {
    case .bitwiseAnd: return Z3_mk_bvand(z, a, b)
    case .bitwiseOr: return Z3_mk_bvor(z, a, b)
    case .bitwiseXor: return Z3_mk_bvxor(z, a, b)
    case .bitwiseNot: return Z3_mk_bvnot(z, a)
    case .add: return Z3_mk_bvadd(z, a, b)
    case .subtract: return Z3_mk_bvsub(z, a, b)
    case .multiply: return Z3_mk_bvmul(z, a, b)
    case .shiftLeft: return Z3_mk_bvshl(z, a, b)
    case .logicalShiftRight: return Z3_mk_bvlshr(z, a, b)
    case .extract(let high, let low): return Z3_mk_extract(z, UInt32(high), UInt32(low), a)
    case .zeroExtend(let bits): return Z3_mk_zero_ext(z, UInt32(bits), a)
    case .concat: return Z3_mk_concat(z, a, b)
    case .equal: return Z3_mk_eq(z, a, b)
    case .unsignedLessThan: return Z3_mk_bvult(z, a, b)
    case .unsignedLessThanOrEqual: return Z3_mk_bvule(z, a, b)
    case .unsignedGreaterThan: return Z3_mk_bvugt(z, a, b)
    case .unsignedGreaterThanOrEqual: return Z3_mk_bvuge(z, a, b)
    case .ifThenElse: return Z3_mk_ite(z, a, b, c)
    case .not: return Z3_mk_not(z, a)
    case .implies: return Z3_mk_implies(z, a, b)
    case .xor: return Z3_mk_xor(z, a, b)
    case .iff: return Z3_mk_iff(z, a, b)
    case .and, .or, .distinct:
      return makeVariadic(operation, [a] + [b, c].compactMap { $0 })
    }
  }

  /// The C constructors of the n-ary operations.
  private func makeVariadic(_ operation: TermOperation, _ asts: [Z3_ast]) -> Z3_ast? {
    let args: [Z3_ast?] = asts
    return args.withUnsafeBufferPointer { buffer in
      let count = UInt32(buffer.count)
      switch operation {
      case .and: return Z3_mk_and(raw, count, buffer.baseAddress)
      case .or: return Z3_mk_or(raw, count, buffer.baseAddress)
      default: return Z3_mk_distinct(raw, count, buffer.baseAddress)
      }
    }
  }
}
