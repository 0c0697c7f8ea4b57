import CZ3

extension Context {
  /// `term` rewritten by Z3's simplifier; a term without variables becomes a constant (a
  /// numeral, `true` or `false`), which ``Term/uint64Value`` and ``Term/boolValue`` can read.
  public func simplify(_ term: Term) throws(Z3Error) -> Term {
    try requireOwned(term, "simplify")
    let ast = try checked(Z3_simplify(raw, term.ast), "Z3_simplify")
    return wrap(ast, sort: term.sort)
  }

  /// `term` with every occurrence of `from[i]` replaced by `to[i]`, simultaneously.
  ///
  /// Throws ``Z3Error`` when the arrays differ in length, a pair differs in sort, or a term
  /// belongs to another context.
  public func substitute(_ term: Term, from: [Term], to: [Term]) throws(Z3Error) -> Term {
    guard from.count == to.count else {
      throw Z3Error(
        code: .invalidArgument,
        message: "substitute: \(from.count) sources but \(to.count) replacements")
    }
    try requireOwned(term, "substitute")
    for (source, target) in zip(from, to) {
      try requireOwned(source, "substitute")
      try requireOwned(target, "substitute")
      guard source.sort == target.sort else {
        throw Z3Error(
          code: .sortError,
          message: "substitute: \(source) has sort \(source.sort), \(target) has \(target.sort)")
      }
    }
    let sources: [Z3_ast?] = from.map(\.ast)
    let targets: [Z3_ast?] = to.map(\.ast)
    let result = sources.withUnsafeBufferPointer { sourceBuffer in
      targets.withUnsafeBufferPointer { targetBuffer in
        Z3_substitute(
          raw, term.ast, UInt32(sourceBuffer.count), sourceBuffer.baseAddress,
          targetBuffer.baseAddress)
      }
    }
    let ast = try checked(result, "Z3_substitute")
    return wrap(ast, sort: term.sort)
  }

  /// Throws unless `term` belongs to this context (mixing contexts is undefined in Z3).
  func requireOwned(_ term: Term, _ operation: String) throws(Z3Error) {
    guard term.context === self else {
      throw Z3Error(code: .invalidArgument, message: "\(operation): term from another context")
    }
  }
}
