import Testing
import Z3

@Suite("Z3 errors become thrown Z3Errors, and the process survives")
struct ErrorTests {
  @Test(
    "a width mismatch built through the raw path throws Z3's error, and the context still works")
  func sortMismatchThrows() throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    let y = context.bitVectorVariable("y", width: 16)
    let error = #expect(throws: Z3Error.self) { try context.apply(.add, to: [x, y]) }
    // Z3 4.8.12 reports this as an exception, not as Z3_SORT_ERROR.
    #expect(error?.code == .exception)
    #expect(error?.message.isEmpty == false)
    // The context keeps working, and the error was cleared.
    let sum = try context.apply(.add, to: [x, x])
    #expect(sum == x &+ x)
    #expect(
      try context.simplify(context.bitVector(3, width: 8) &+ context.bitVector(4, width: 8))
        .uint64Value == 7)
  }

  @Test("raw-path misuse throws: Boolean operand, bad extract, wrong arity, bad parameter")
  func rawPathRejectsMisuse() {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    let p = context.boolVariable("p")
    let cases: [(TermOperation, [Term])] = [
      (.bitwiseAnd, [x, p]),
      (.extract(high: 8, low: 0), [x]),
      (.extract(high: 2, low: 5), [x]),
      (.extract(high: 3, low: -1), [x]),
      (.zeroExtend(bits: -1), [x]),
      (.add, [x]),
      (.ifThenElse, [x, x, x]),
      (.not, [x]),
      (.and, [p, x]),
    ]
    for (operation, operands) in cases {
      #expect(throws: Z3Error.self, "\(operation)") { try context.apply(operation, to: operands) }
    }
  }

  @Test("the raw path builds the same terms as the typed methods when well-sorted")
  func rawPathMatchesTypedPath() throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    let y = context.bitVectorVariable("y", width: 8)
    let p = context.boolVariable("p")
    #expect(try context.apply(.multiply, to: [x, y]) == x &* y)
    #expect(try context.apply(.extract(high: 5, low: 2), to: [x]).width == 4)
    #expect(try context.apply(.concat, to: [x, y]).sort == .bitVector(width: 16))
    #expect(try context.apply(.unsignedLessThan, to: [x, y]) == x.unsignedLessThan(y))
    #expect(
      try context.apply(.ifThenElse, to: [p, x, y]) == context.ifThenElse(p, then: x, else: y))
    #expect(try context.apply(.and, to: []).sort == .bool)
  }

  @Test("malformed or ill-sorted SMT-LIB2 text throws a parser error with Z3's message")
  func malformedSMTLIB2Throws() throws {
    let context = Context()
    let scripts = [
      "(assert (= x",
      "(assert (= y #x01))",
      "(declare-const x (_ BitVec 8)) (assert (= x #x0))",
      "(assert 42)",
    ]
    for script in scripts {
      let error = #expect(throws: Z3Error.self, "\(script)") { try context.parse(smtlib2: script) }
      #expect(error?.code == .parserError)
      #expect(error?.message.isEmpty == false)
    }
    let good = try context.parse(smtlib2: "(declare-const x (_ BitVec 8)) (assert (= x #x01))")
    #expect(good.count == 1)
  }

  @Test("substitute rejects mismatched lengths and sorts")
  func substituteRejectsMismatch() {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    #expect(throws: Z3Error.self) { try context.substitute(x, from: [x], to: []) }
    #expect(throws: Z3Error.self) {
      try context.substitute(x, from: [x], to: [context.bitVector(1, width: 16)])
    }
  }

  @Test("a model assignment rejects non-variables, wrong sorts, non-constants and repeats")
  func modelAssignmentRejectsMisuse() {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    let y = context.bitVectorVariable("y", width: 8)
    let one = context.bitVector(1, width: 8)
    let bad: [[(variable: Term, value: Term)]] = [
      [(x &+ y, one)],
      [(one, one)],
      [(x, context.bitVector(1, width: 16))],
      [(x, context.bool(true))],
      [(x, y)],
      [(x, one), (x, one)],
    ]
    for assignment in bad {
      #expect(throws: Z3Error.self) { try context.model(assigning: assignment) }
    }
  }

  @Test("terms from another context are rejected by throwing APIs")
  func foreignTermsThrow() throws {
    let first = Context()
    let second = Context()
    let x = first.bitVectorVariable("x", width: 8)
    let y = second.bitVectorVariable("y", width: 8)
    #expect(throws: Z3Error.self) { try first.apply(.add, to: [x, y]) }
    #expect(throws: Z3Error.self) { try second.simplify(x) }
    #expect(throws: Z3Error.self) { try Solver(context: second).check(assuming: [x.equals(x)]) }
  }

  @Test("misusing a typed operator (mismatched widths) stops the process with a precondition")
  func typedMisuseStops() async {
    await #expect(processExitsWith: .failure) {
      let context = Context()
      _ = context.bitVectorVariable("x", width: 8) & context.bitVectorVariable("y", width: 16)
    }
  }
}
