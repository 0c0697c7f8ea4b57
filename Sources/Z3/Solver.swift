import CZ3

/// The answer of a satisfiability check.
public enum CheckResult: Hashable, Sendable {
  /// The assertions (and assumptions) have a model; ``Solver/model()`` returns one.
  case satisfiable
  /// The assertions (and assumptions) have no model.
  case unsatisfiable
  /// Z3 gave up (limit reached, incomplete theory, interrupted). `reason` is Z3's text, for
  /// people only: it varies between solvers and versions, so never decide anything on it.
  case unknown(reason: String)
}

/// An incremental Z3 solver: assertions in nested scopes, checks with or without assumptions,
/// limits, models, and the SMT-LIB2 text of the current query.
///
/// Holds a reference on its Z3 solver and on its ``Context``. Not `Sendable`.
public final class Solver {
  /// Which Z3 solver to create; the choice decides speed by orders of magnitude, so it is
  /// always explicit (see ENGINEERING-NOTES).
  public enum Kind: Hashable, Sendable {
    /// `Z3_mk_simple_solver`: the SMT core without preprocessing tactics. Measured about
    /// 1000x faster than `.default` on array-heavy bit-vector queries; the default kind here.
    case simple
    /// `Z3_mk_solver`: Z3's general-purpose combined solver.
    case `default`
    /// `Z3_mk_solver_for_logic`: a solver specialized for an SMT-LIB logic such as `QF_BV`.
    /// An unknown logic name makes ``Solver/init(context:kind:)`` throw.
    case logic(String)
  }

  /// The context that owns this solver and the terms it takes.
  public let context: Context
  /// The kind this solver was created as.
  public let kind: Kind
  let raw: Z3_solver

  /// The assertions made in each open scope, outermost first, exactly as given (Z3's own
  /// assertion list is rewritten by some solver kinds).
  private var scopes: [[Term]] = [[]]

  /// The wall-clock limit of each check, in milliseconds, or nil for none. A check that
  /// reaches it returns `.unknown`; its reason text varies.
  public var timeoutMilliseconds: UInt32? {
    didSet { parametersChanged = true }
  }

  /// Z3's deterministic resource limit ("rlimit") for each check, or nil for none. A check
  /// that reaches it returns `.unknown`, the same way on every run, which suits CI.
  public var resourceLimit: UInt32? {
    didSet { parametersChanged = true }
  }

  /// Whether the limits changed since they were last handed to Z3.
  private var parametersChanged = false

  /// The verdict of the last check if nothing (assertion, push, pop) changed since; a model or
  /// core is only asked of Z3 then. (A fresh Z3 solver hands out an empty model, and a stale
  /// model may violate later assertions.)
  private var lastVerdict: CheckResult?

  /// Creates a solver of `kind` (``Kind/simple`` unless chosen otherwise).
  ///
  /// Throws ``Z3Error`` when Z3 rejects the kind, such as an unknown logic name.
  public init(context: Context, kind: Kind = .simple) throws(Z3Error) {
    let made: Z3_solver?
    switch kind {
    case .simple: made = Z3_mk_simple_solver(context.raw)
    case .default: made = Z3_mk_solver(context.raw)
    case .logic(let name):
      made = Z3_mk_solver_for_logic(context.raw, Z3_mk_string_symbol(context.raw, name))
    }
    let solver = try context.checked(made, "creating a \(kind) solver")
    Z3_solver_inc_ref(context.raw, solver)
    self.context = context
    self.kind = kind
    self.raw = solver
  }

  deinit { Z3_solver_dec_ref(context.raw, raw) }

  /// Every assertion in every open scope, outermost first, as given to ``assert(_:)``.
  public var assertions: [Term] { scopes.flatMap { $0 } }

  /// The number of open scopes made by ``push()`` and not yet popped.
  public var scopeCount: Int { scopes.count - 1 }

  /// Adds a Boolean assertion to the current scope.
  public func assert(_ term: Term) {
    precondition(term.context === context, "assert: term from another context")
    term.requireBool("assert")
    Z3_solver_assert(context.raw, raw, term.ast)
    if context.takeError() != nil { context.unexpectedFailure("Z3_solver_assert") }
    scopes[scopes.count - 1].append(term)
    lastVerdict = nil
  }

  /// Adds each Boolean assertion to the current scope.
  public func assert(_ terms: [Term]) {
    for term in terms { assert(term) }
  }

  /// Opens a scope: assertions after it are removed by the matching ``pop(_:)``.
  public func push() {
    Z3_solver_push(context.raw, raw)
    if context.takeError() != nil { context.unexpectedFailure("Z3_solver_push") }
    scopes.append([])
    lastVerdict = nil
  }

  /// Closes the innermost `count` scopes, removing their assertions; `count` must not exceed
  /// ``scopeCount``.
  public func pop(_ count: Int = 1) {
    precondition(count >= 0 && count <= scopeCount, "pop(\(count)) with \(scopeCount) scopes")
    guard count > 0 else { return }
    Z3_solver_pop(context.raw, raw, UInt32(count))
    if context.takeError() != nil { context.unexpectedFailure("Z3_solver_pop") }
    scopes.removeLast(count)
    lastVerdict = nil
  }

  /// Checks whether the assertions, together with the Boolean `assumptions` (which are not
  /// added), are satisfiable.
  ///
  /// Throws ``Z3Error`` when Z3 fails (as opposed to answering unknown).
  public func check(assuming assumptions: [Term] = []) throws(Z3Error) -> CheckResult {
    lastVerdict = nil
    for assumption in assumptions {
      try context.requireOwned(assumption, "check(assuming:)")
      guard assumption.sort == .bool else {
        throw Z3Error(code: .sortError, message: "assumption \(assumption) is not Boolean")
      }
    }
    try applyParameters()
    let answer: Z3_lbool
    if assumptions.isEmpty {
      answer = Z3_solver_check(context.raw, raw)
    } else {
      let asts: [Z3_ast?] = assumptions.map(\.ast)
      answer = asts.withUnsafeBufferPointer { buffer in
        Z3_solver_check_assumptions(context.raw, raw, UInt32(buffer.count), buffer.baseAddress)
      }
    }
    try context.throwIfError()
    let verdict: CheckResult
    switch answer {
    case Z3_L_TRUE: verdict = .satisfiable
    case Z3_L_FALSE: verdict = .unsatisfiable
    default:
      let reason = context.string(Z3_solver_get_reason_unknown(context.raw, raw))
      try context.throwIfError()
      verdict = .unknown(reason: reason)
    }
    lastVerdict = verdict
    return verdict
  }

  /// The model found by the last check, which must have answered `.satisfiable` with no
  /// assertion, push or pop since; throws ``Z3Error`` (`.invalidUsage`) otherwise.
  public func model() throws(Z3Error) -> Model {
    guard lastVerdict == .satisfiable else {
      throw Z3Error(code: .invalidUsage, message: "no model: the last check was not satisfiable")
    }
    let made = try context.checked(Z3_solver_get_model(context.raw, raw), "Z3_solver_get_model")
    return Model(context: context, raw: made)
  }

  /// After a check under assumptions answered `.unsatisfiable` (with no change since): a subset
  /// of the assumptions that is already unsatisfiable with the assertions (not necessarily
  /// minimal); throws ``Z3Error`` (`.invalidUsage`) after any other verdict.
  public func unsatCore() throws(Z3Error) -> [Term] {
    guard lastVerdict == .unsatisfiable else {
      throw Z3Error(code: .invalidUsage, message: "no core: the last check was not unsatisfiable")
    }
    let vector = try context.checked(
      Z3_solver_get_unsat_core(context.raw, raw), "Z3_solver_get_unsat_core")
    Z3_ast_vector_inc_ref(context.raw, vector)
    defer { Z3_ast_vector_dec_ref(context.raw, vector) }
    return context.terms(in: vector)
  }

  /// Hands the limits to Z3 if they changed. Z3 reads `timeout` and `rlimit` from the solver's
  /// parameters at each check; "none" is `UInt32.max` ms and an rlimit of 0.
  private func applyParameters() throws(Z3Error) {
    guard parametersChanged else { return }
    let c = context.raw
    let parameters = try context.checked(Z3_mk_params(c), "Z3_mk_params")
    Z3_params_inc_ref(c, parameters)
    defer { Z3_params_dec_ref(c, parameters) }
    Z3_params_set_uint(
      c, parameters, Z3_mk_string_symbol(c, "timeout"), timeoutMilliseconds ?? UInt32.max)
    Z3_params_set_uint(c, parameters, Z3_mk_string_symbol(c, "rlimit"), resourceLimit ?? 0)
    Z3_solver_set_params(c, raw, parameters)
    try context.throwIfError()
    parametersChanged = false
  }
}
