import CZ3

extension Context {
  /// A standalone SMT-LIB2 script asserting `formulas`: a header, the declarations of their
  /// variables, one `assert` each (shared subterms bound by `let`) and `(check-sat)`, so
  /// that another solver, or ``parse(smtlib2:)``, can run the query alone.
  public func smtlib2(asserting formulas: [Term]) throws(Z3Error) -> String {
    for formula in formulas {
      try requireOwned(formula, "smtlib2")
      guard formula.sort == .bool else {
        throw Z3Error(code: .sortError, message: "smtlib2: \(formula) is not Boolean")
      }
    }
    // Z3 prints the "assumptions" as asserts before the final formula.
    let last = formulas.last ?? bool(true)
    let leading: [Z3_ast?] = formulas.dropLast().map(\.ast)
    let text = leading.withUnsafeBufferPointer { buffer in
      string(
        Z3_benchmark_to_smtlib_string(
          raw, "nestcheck", nil, "unknown", "", UInt32(buffer.count), buffer.baseAddress,
          last.ast))
    }
    try throwIfError()
    return text
  }

  /// The assertions of an SMT-LIB2 script, in order, as Boolean terms of this context.
  ///
  /// Declarations are honoured; commands such as `(check-sat)` are ignored. Throws
  /// ``Z3Error`` (usually `.parserError`) with Z3's message for malformed or ill-sorted text.
  /// Z3 prints a warning for unsupported commands to standard error and skips them.
  public func parse(smtlib2 text: String) throws(Z3Error) -> [Term] {
    let result = Z3_parse_smtlib2_string(raw, text, 0, nil, nil, 0, nil, nil)
    // Read the error before any other call: every API call (even inc_ref) resets it. Z3 4.8.12
    // also returns a vector when it reports a parse error, so release the vector either way.
    let error = takeError()
    if let result { Z3_ast_vector_inc_ref(raw, result) }
    defer { if let result { Z3_ast_vector_dec_ref(raw, result) } }
    if let error { throw error }
    let vector = try checked(result, "Z3_parse_smtlib2_string")
    return terms(in: vector)
  }
}

extension Solver {
  /// The current query as a standalone SMT-LIB2 script (see ``Context/smtlib2(asserting:)``):
  /// every assertion in every open scope, as given, followed by `assumptions` as further
  /// asserts, so that its verdict equals `check(assuming: assumptions)`.
  public func smtlib2(assuming assumptions: [Term] = []) throws(Z3Error) -> String {
    try context.smtlib2(asserting: assertions + assumptions)
  }
}
