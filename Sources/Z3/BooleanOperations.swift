/// Boolean connectives, equality and if-then-else, with sorts checked in Swift (misuse is a
/// programming error that stops with a precondition message; ``Context/apply(_:to:)`` throws
/// instead).
extension Term {
  func requireBool(_ operation: StaticString) {
    precondition(sort == .bool, "\(operation) needs a Boolean, got \(sort)")
  }

  /// Negation of a Boolean term (`not`).
  public func not() -> Term {
    requireBool("not")
    return context.build(.not, self, sort: .bool)
  }

  /// Conjunction of two Boolean terms; ``Context/and(_:)`` takes any number.
  public func and(_ other: Term) -> Term {
    requireBool("and")
    other.requireBool("and")
    return context.build(.and, self, other, sort: .bool)
  }

  /// Disjunction of two Boolean terms; ``Context/or(_:)`` takes any number.
  public func or(_ other: Term) -> Term {
    requireBool("or")
    other.requireBool("or")
    return context.build(.or, self, other, sort: .bool)
  }

  /// `self` implies `other`, both Boolean (`=>`).
  public func implies(_ other: Term) -> Term {
    requireBool("implies")
    other.requireBool("implies")
    return context.build(.implies, self, other, sort: .bool)
  }

  /// Exclusive or of two Boolean terms (`xor`); for bit-vectors use ``bitwiseXor(_:)``.
  public func xor(_ other: Term) -> Term {
    requireBool("xor")
    other.requireBool("xor")
    return context.build(.xor, self, other, sort: .bool)
  }

  /// Equivalence of two Boolean terms.
  public func iff(_ other: Term) -> Term {
    requireBool("iff")
    other.requireBool("iff")
    return context.build(.iff, self, other, sort: .bool)
  }

  /// The Boolean term "`self` equals `other`", for two terms of one sort (`=`).
  ///
  /// Not spelled `==`, which compares terms as expressions (see ``Term``'s `Equatable`).
  public func equals(_ other: Term) -> Term {
    precondition(sort == other.sort, "equals needs one sort, got \(sort) and \(other.sort)")
    return context.build(.equal, self, other, sort: .bool)
  }
}

extension Context {
  /// Conjunction of Boolean terms; `true` for an empty array.
  public func and(_ terms: [Term]) -> Term {
    for term in terms { term.requireBool("and") }
    return build(.and, terms, sort: .bool)
  }

  /// Disjunction of Boolean terms; `false` for an empty array.
  public func or(_ terms: [Term]) -> Term {
    for term in terms { term.requireBool("or") }
    return build(.or, terms, sort: .bool)
  }

  /// The Boolean term "all of `terms` differ pairwise", for at least one term of one sort.
  public func distinct(_ terms: [Term]) -> Term {
    precondition(!terms.isEmpty, "distinct needs at least one term")
    for term in terms {
      precondition(term.sort == terms[0].sort, "distinct needs one sort")
    }
    return build(.distinct, terms, sort: .bool)
  }

  /// `then` if the Boolean `condition` holds, otherwise `else`; both branches of one sort.
  public func ifThenElse(_ condition: Term, then: Term, else otherwise: Term) -> Term {
    condition.requireBool("ifThenElse")
    precondition(then.sort == otherwise.sort, "ifThenElse branches differ in sort")
    return build(.ifThenElse, condition, then, otherwise, sort: then.sort)
  }
}
