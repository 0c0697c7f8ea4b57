import CZ3

/// An assignment of values to variables, from a satisfiable ``Solver`` or built explicitly
/// with ``Context/model(assigning:)``, under which terms can be evaluated.
///
/// Holds a reference on its Z3 model and on its ``Context``. Not `Sendable`.
public final class Model {
  /// The context that owns this model and the terms it evaluates.
  public let context: Context
  let raw: Z3_model

  /// Takes a reference on a fresh model at once.
  init(context: Context, raw: Z3_model) {
    Z3_model_inc_ref(context.raw, raw)
    self.context = context
    self.raw = raw
  }

  deinit { Z3_model_dec_ref(context.raw, raw) }

  /// The value of `term` under this model.
  ///
  /// With `completion` false, variables the model does not assign stay symbolic in the result;
  /// with `completion` true, Z3 picks a default value for them (and records it in the model).
  public func evaluate(_ term: Term, completion: Bool) throws(Z3Error) -> Term {
    try context.requireOwned(term, "evaluate")
    var result: Z3_ast?
    let succeeded = Z3_model_eval(context.raw, raw, term.ast, completion, &result)
    if let error = context.takeError() { throw error }
    guard succeeded, let result else {
      throw Z3Error(code: .invalidArgument, message: "Z3_model_eval could not evaluate \(term)")
    }
    return context.wrap(result, sort: term.sort)
  }

  /// The value of a bit-vector `term` of at most 64 bits under this model, or nil when the
  /// model does not determine it (a variable it leaves unassigned, unless `completion`).
  public func uint64(of term: Term, completion: Bool = false) throws(Z3Error) -> UInt64? {
    try evaluate(term, completion: completion).uint64Value
  }

  /// The value of a Boolean `term` under this model, or nil when the model does not determine
  /// it (a variable it leaves unassigned, unless `completion`).
  public func bool(of term: Term, completion: Bool = false) throws(Z3Error) -> Bool? {
    try evaluate(term, completion: completion).boolValue
  }
}

extension Model: CustomStringConvertible {
  /// The assignments in Z3's textual form, for diagnostics.
  public var description: String { context.string(Z3_model_to_string(context.raw, raw)) }
}

extension Context {
  /// A model that assigns each `variable` its `value` and nothing else, so that a term can be
  /// evaluated under a concrete assignment without solving.
  ///
  /// Each variable must be an uninterpreted constant (made by ``bitVectorVariable(_:width:)``,
  /// ``boolVariable(_:)`` or parsing), assigned once, to a constant (numeral, `true` or `false`)
  /// of its own sort; otherwise this throws ``Z3Error``.
  public func model(assigning assignment: [(variable: Term, value: Term)]) throws(Z3Error)
    -> Model
  {
    var seen = Set<Term>()
    for (variable, value) in assignment {
      try requireOwned(variable, "model(assigning:)")
      try requireOwned(value, "model(assigning:)")
      guard isUninterpretedConstant(variable) else {
        throw Z3Error(code: .invalidArgument, message: "\(variable) is not a variable")
      }
      guard seen.insert(variable).inserted else {
        throw Z3Error(code: .invalidArgument, message: "\(variable) is assigned twice")
      }
      guard Z3_get_sort(raw, variable.ast) == Z3_get_sort(raw, value.ast) else {
        throw Z3Error(
          code: .sortError,
          message: "\(variable) has sort \(variable.sort) but its value \(value) has \(value.sort)")
      }
      guard value.isNumeral || value.boolValue != nil else {
        throw Z3Error(code: .invalidArgument, message: "\(value) is not a constant value")
      }
    }
    let model = Model(context: self, raw: try checked(Z3_mk_model(raw), "Z3_mk_model"))
    for (variable, value) in assignment {
      let declaration = Z3_get_app_decl(raw, Z3_to_app(raw, variable.ast))
      Z3_add_const_interp(raw, model.raw, declaration, value.ast)
      try throwIfError()
    }
    return model
  }

  /// Whether `term` is a variable: an application of an uninterpreted function of no arguments.
  func isUninterpretedConstant(_ term: Term) -> Bool {
    guard Z3_is_app(raw, term.ast) else { return false }
    let app = Z3_to_app(raw, term.ast)
    guard Z3_get_app_num_args(raw, app) == 0 else { return false }
    return Z3_get_decl_kind(raw, Z3_get_app_decl(raw, app)) == Z3_OP_UNINTERPRETED
  }
}
