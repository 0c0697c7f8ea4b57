import CZ3

/// The reference-counted box behind a ``Term``: one Z3 reference, released on deinit.
final class TermStorage {
  let context: Context
  let ast: Z3_ast
  var sort: Sort

  /// Takes a reference on `ast` immediately; see ENGINEERING-NOTES ("wrap every result before
  /// making the next C call").
  init(context: Context, ast: Z3_ast, sort: Sort) {
    Z3_inc_ref(context.raw, ast)
    self.context = context
    self.ast = ast
    self.sort = sort
  }

  deinit { Z3_dec_ref(context.raw, ast) }
}

/// An immutable Z3 expression (a Boolean or bit-vector term), holding a reference on its Z3 AST
/// and on its ``Context``.
///
/// Terms are values: copying one shares the same Z3 AST. Two terms are equal when they are the
/// same expression in the same context (Z3 hash-conses expressions, so structural equality is
/// identity). Build terms with the ``Context`` factory methods and the operations in
/// `BitVectorOperations.swift` and `BooleanOperations.swift`.
public struct Term {
  let storage: TermStorage

  /// The context that owns this term; operands of one operation must share it.
  public var context: Context { storage.context }

  /// The C handle, valid while this term is alive.
  var ast: Z3_ast { storage.ast }

  /// The sort of this term.
  public var sort: Sort { storage.sort }

  /// The width in bits if this is a bit-vector term, otherwise nil.
  public var width: Int? {
    if case .bitVector(let width) = sort { return width }
    return nil
  }

  /// Whether this term is a bit-vector numeral (a constant value, such as `#x2a`).
  public var isNumeral: Bool { Z3_is_numeral_ast(context.raw, ast) }

  /// The value of a Boolean constant (`true` or `false`), or nil for any other term, including
  /// Boolean terms that are not yet simplified to a constant.
  public var boolValue: Bool? {
    guard sort == .bool else { return nil }
    let value = Z3_get_bool_value(context.raw, ast)
    if value == Z3_L_TRUE { return true }
    if value == Z3_L_FALSE { return false }
    return nil
  }

  /// The value of a bit-vector numeral that fits in 64 bits, or nil for anything else.
  public var uint64Value: UInt64? {
    guard width != nil, isNumeral else { return nil }
    var value: UInt64 = 0
    guard Z3_get_numeral_uint64(context.raw, ast, &value) else {
      _ = context.takeError()
      return nil
    }
    return value
  }

  /// The value of a bit-vector numeral of any width as an unsigned decimal string, or nil for
  /// anything else; use it for numerals wider than 64 bits.
  public var decimalValue: String? {
    guard width != nil, isNumeral else { return nil }
    let text = context.string(Z3_get_numeral_string(context.raw, ast))
    guard context.takeError() == nil else { return nil }
    return text
  }
}

extension Term: Hashable {
  /// Whether both terms are the same expression in the same context.
  public static func == (lhs: Term, rhs: Term) -> Bool {
    lhs.storage.context === rhs.storage.context && lhs.ast == rhs.ast
  }

  /// Hashes the expression's identity, consistent with `==`.
  public func hash(into hasher: inout Hasher) {
    hasher.combine(ast)
  }
}

extension Term: CustomStringConvertible {
  /// The term in SMT-LIB2 syntax, with shared subterms bound by `let`.
  public var description: String { context.string(Z3_ast_to_string(context.raw, ast)) }
}

extension Context {
  /// The bit-vector numeral `value` of `width` bits (1 through 64).
  ///
  /// `value` must fit: a value that does not is a programming error, not silently truncated.
  public func bitVector(_ value: UInt64, width: Int) -> Term {
    precondition((1...64).contains(width), "bitVector(_:width:) takes widths 1...64")
    precondition(width == 64 || value >> UInt64(width) == 0, "\(value) does not fit \(width) bits")
    let sort = bitVectorSort(width: width)
    guard let ast = Z3_mk_unsigned_int64(raw, value, sort) else {
      unexpectedFailure("Z3_mk_unsigned_int64")
    }
    return wrap(ast, sort: .bitVector(width: width))
  }

  /// The bit-vector numeral of any width given by an unsigned decimal string, such as a
  /// 128-bit value.
  ///
  /// Throws ``Z3Error`` (`.parserError`) when `decimal` is not a string of decimal digits, and
  /// `.invalidArgument` when the value does not fit `width` bits or `width` is not positive.
  public func bitVector(decimal: String, width: Int) throws(Z3Error) -> Term {
    guard width >= 1, width <= Int(UInt32.max) else {
      throw Z3Error(code: .invalidArgument, message: "bit-vector width \(width) out of range")
    }
    guard !decimal.isEmpty,
      decimal.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")) ~= $0 })
    else {
      throw Z3Error(code: .parserError, message: "not an unsigned decimal numeral: \(decimal)")
    }
    let sort = bitVectorSort(width: width)
    let ast = try checked(Z3_mk_numeral(raw, decimal, sort), "Z3_mk_numeral")
    let term = wrap(ast, sort: .bitVector(width: width))
    guard term.decimalValue == decimal.drop(while: { $0 == "0" }).nonEmpty(or: "0") else {
      throw Z3Error(code: .invalidArgument, message: "\(decimal) does not fit \(width) bits")
    }
    return term
  }

  /// The Boolean constant `value`.
  public func bool(_ value: Bool) -> Term {
    let made: Z3_ast? = value ? Z3_mk_true(raw) : Z3_mk_false(raw)
    guard let made else { unexpectedFailure("Z3_mk_true/false") }
    return wrap(made, sort: .bool)
  }

  /// The bit-vector variable (uninterpreted constant) `name` of `width` bits.
  ///
  /// The same name and width give the same term; the same name with another sort is a
  /// different variable, which SMT-LIB2 text cannot tell apart, so avoid reusing names.
  public func bitVectorVariable(_ name: String, width: Int) -> Term {
    precondition(width >= 1, "bit-vector width must be positive")
    let sort = bitVectorSort(width: width)
    return constant(name, sort: sort, known: .bitVector(width: width))
  }

  /// The Boolean variable (uninterpreted constant) `name`.
  public func boolVariable(_ name: String) -> Term {
    constant(name, sort: boolSort, known: .bool)
  }

  private func constant(_ name: String, sort: Z3_sort, known: Sort) -> Term {
    let symbol = Z3_mk_string_symbol(raw, name)
    guard let ast = Z3_mk_const(raw, symbol, sort) else { unexpectedFailure("Z3_mk_const") }
    return wrap(ast, sort: known)
  }
}

extension Substring {
  fileprivate func nonEmpty(or replacement: String) -> String {
    isEmpty ? replacement : String(self)
  }
}
