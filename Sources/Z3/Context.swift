import CZ3

/// The owner of all Z3 state: every term, solver and model belongs to exactly one context, and
/// keeps it alive.
///
/// The context is created with reference counting (`Z3_mk_context_rc`) and model generation on.
/// Z3's default error handler ends the process, so this context installs a null handler and
/// turns every error into a thrown ``Z3Error``. Terms print in SMT-LIB2-compliant mode, which
/// shares common subterms with `let` (the default mode expands a DAG into an exponentially
/// large tree).
///
/// A context is not `Sendable`: use one per task. Contexts in different tasks are independent.
public final class Context {
  /// The C handle; valid for the life of this object.
  let raw: Z3_context
  /// Bit-vector sorts by width, each holding one reference, released in `deinit`.
  private var bitVectorSorts: [Int: Z3_sort] = [:]
  /// The Boolean sort, holding one reference.
  private let boolSortHandle: Z3_sort

  /// Creates an independent Z3 context with reference counting and model generation enabled.
  public init() {
    let config = Z3_mk_config()
    Z3_set_param_value(config, "model", "true")
    let made: Z3_context? = Z3_mk_context_rc(config)
    Z3_del_config(config)
    guard let made else { fatalError("Z3_mk_context_rc returned no context (out of memory?)") }
    raw = made
    Z3_set_error_handler(raw, nil)
    Z3_set_ast_print_mode(raw, Z3_PRINT_SMTLIB2_COMPLIANT)
    guard let bool: Z3_sort = Z3_mk_bool_sort(raw) else {
      fatalError("Z3_mk_bool_sort returned no sort (out of memory?)")
    }
    Z3_inc_ref(raw, Z3_sort_to_ast(raw, bool))
    boolSortHandle = bool
  }

  deinit {
    for sort in bitVectorSorts.values { Z3_dec_ref(raw, Z3_sort_to_ast(raw, sort)) }
    Z3_dec_ref(raw, Z3_sort_to_ast(raw, boolSortHandle))
    Z3_del_context(raw)
  }

  // MARK: - Errors

  /// The pending Z3 error, if any, cleared so that it is reported once.
  func takeError() -> Z3Error? {
    let code = Z3_get_error_code(raw)
    guard code != Z3_OK else { return nil }
    let message = string(Z3_get_error_msg(raw, code))
    Z3_set_error(raw, Z3_OK)
    return Z3Error(code: Z3Error.Code(code), message: message)
  }

  /// Throws the pending Z3 error, if any.
  func throwIfError() throws(Z3Error) {
    if let error = takeError() { throw error }
  }

  /// The result of a C call that returns an object, or the pending error.
  ///
  /// Z3 sometimes returns an object *and* reports an error (the SMT-LIB2 parser does), so the
  /// error code is checked first; the caller must still release a non-nil result it got.
  func checked(
    _ result: OpaquePointer?, _ call: @autoclosure () -> String
  ) throws(Z3Error) -> OpaquePointer {
    if let error = takeError() { throw error }
    guard let result else {
      throw Z3Error(code: .exception, message: "\(call()) returned nothing without an error")
    }
    return result
  }

  /// Stops the program for a Z3 failure on input that Swift-side checks already accepted: that
  /// is a bug in this layer, not a recoverable error.
  func unexpectedFailure(_ call: String) -> Never {
    let detail = takeError()?.description ?? "no error reported"
    preconditionFailure("Z3 rejected validated input to \(call): \(detail)")
  }

  /// Copies a C string owned by Z3 (valid only until the next call) into a Swift string.
  func string(_ pointer: UnsafePointer<CChar>?) -> String {
    guard let pointer else { return "" }
    return String(cString: pointer)
  }

  // MARK: - Sorts and wrapping

  /// The Boolean sort (owned by this context).
  var boolSort: Z3_sort { boolSortHandle }

  /// The bit-vector sort of `width` bits, made once per width and kept for the context's life.
  func bitVectorSort(width: Int) -> Z3_sort {
    if let sort = bitVectorSorts[width] { return sort }
    precondition(width >= 1 && width <= Int(UInt32.max), "bit-vector width \(width) out of range")
    guard let sort: Z3_sort = Z3_mk_bv_sort(raw, UInt32(width)) else {
      unexpectedFailure("Z3_mk_bv_sort(\(width))")
    }
    Z3_inc_ref(raw, Z3_sort_to_ast(raw, sort))
    bitVectorSorts[width] = sort
    return sort
  }

  /// Takes a reference to a fresh AST at once (before any other C call can free it), with its
  /// sort already known.
  func wrap(_ ast: Z3_ast, sort: Sort) -> Term {
    Term(storage: TermStorage(context: self, ast: ast, sort: sort))
  }

  /// Takes a reference to a fresh AST at once, then reads its sort from Z3.
  func wrap(_ ast: Z3_ast) -> Term {
    let storage = TermStorage(context: self, ast: ast, sort: .bool)
    storage.sort = sort(of: ast)
    return Term(storage: storage)
  }

  /// Wraps every element of an AST vector, then releases the vector (and `vector` itself must
  /// already hold a reference taken by the caller).
  func terms(in vector: Z3_ast_vector) -> [Term] {
    let count = Z3_ast_vector_size(raw, vector)
    var result: [Term] = []
    result.reserveCapacity(Int(count))
    for index in 0..<count {
      if let ast = Z3_ast_vector_get(raw, vector, index) { result.append(wrap(ast)) }
    }
    return result
  }
}
