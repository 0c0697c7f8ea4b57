import CZ3

/// The sort (type) of a term, as far as this layer needs to know it to check operands in Swift.
public enum Sort: Hashable, Sendable, CustomStringConvertible {
  /// The Boolean sort.
  case bool
  /// Bit-vectors of a fixed `width` in bits (at least 1).
  case bitVector(width: Int)
  /// Any other sort (arrays, integers, ...), named as Z3 prints it; such terms can come from
  /// parsed SMT-LIB2 text but cannot be built here.
  case other(name: String)

  /// The sort in SMT-LIB2 notation, such as `(_ BitVec 8)`.
  public var description: String {
    switch self {
    case .bool: "Bool"
    case .bitVector(let width): "(_ BitVec \(width))"
    case .other(let name): name
    }
  }
}

extension Context {
  /// The sort of an AST this context owns, read from Z3 (no allocation, no reference change).
  func sort(of ast: Z3_ast) -> Sort {
    guard let sort = Z3_get_sort(raw, ast) else { return .other(name: "?") }
    let kind = Z3_get_sort_kind(raw, sort)
    if kind == Z3_BOOL_SORT { return .bool }
    if kind == Z3_BV_SORT { return .bitVector(width: Int(Z3_get_bv_sort_size(raw, sort))) }
    return .other(name: string(Z3_sort_to_string(raw, sort)))
  }
}
