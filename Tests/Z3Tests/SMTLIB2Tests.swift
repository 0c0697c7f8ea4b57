import Testing
import Z3

@Suite("SMT-LIB2 text of a query")
struct SMTLIB2Tests {
  /// Re-runs `script` in a fresh context and solver, as another process would.
  func verdictOfScript(_ script: String) throws -> CheckResult {
    let context = Context()
    let solver = try Solver(context: context, kind: .default)
    solver.assert(try context.parse(smtlib2: script))
    return try solver.check()
  }

  @Test("the script is standalone: declarations, asserts and (check-sat)")
  func scriptShape() throws {
    let context = Context()
    let solver = try Solver(context: context)
    let x = context.bitVectorVariable("x", width: 8)
    solver.assert(x.unsignedLessThan(context.bitVector(3, width: 8)))
    let script = try solver.smtlib2()
    #expect(script.contains("(declare-fun x () (_ BitVec 8))"))
    #expect(script.contains("(assert"))
    #expect(script.contains("bvult"))
    #expect(script.hasSuffix("(check-sat)\n"))
    #expect(try context.smtlib2(asserting: []).contains("(check-sat)"))
  }

  @Test("emitted text re-parses into a query with the same verdict (scopes and assumptions)")
  func scriptKeepsVerdict() throws {
    let context = Context()
    let solver = try Solver(context: context)
    let x = context.bitVectorVariable("x", width: 8)
    let p = context.boolVariable("p")
    solver.assert(x.unsignedGreaterThan(context.bitVector(3, width: 8)))
    solver.push()
    solver.assert(p.implies(x.equals(context.bitVector(2, width: 8))))
    #expect(try solver.check() == .satisfiable)
    #expect(try verdictOfScript(solver.smtlib2()) == .satisfiable)
    #expect(try solver.check(assuming: [p]) == .unsatisfiable)
    #expect(try verdictOfScript(solver.smtlib2(assuming: [p])) == .unsatisfiable)
    solver.pop()
    solver.assert(x.equals(context.bitVector(2, width: 8)))
    #expect(try solver.check() == .unsatisfiable)
    #expect(try verdictOfScript(solver.smtlib2()) == .unsatisfiable)
  }

  @Test("random queries keep their verdict through SMT-LIB2 text", arguments: 0..<20)
  func randomQueriesKeepVerdict(seed: UInt64) throws {
    let context = Context()
    var random = SeededGenerator(seed: seed)
    let width = [4, 8, 12][Int(seed % 3)]
    let variables = (0..<3).map { context.bitVectorVariable("v\($0)", width: width) }
    var pool =
      variables + (0..<3).map { _ in context.bitVector(random.value(width: width), width: width) }
    for _ in 0..<8 {
      let a = pool[Int(random.next() % UInt64(pool.count))]
      let b = pool[Int(random.next() % UInt64(pool.count))]
      let operation = BinaryOperator.allCases.filter { !$0.isComparison }
      pool.append(operation[Int(random.next() % UInt64(operation.count))].term(a, b))
    }
    let solver = try Solver(context: context)
    for _ in 0..<3 {
      let a = pool[Int(random.next() % UInt64(pool.count))]
      let b = pool[Int(random.next() % UInt64(pool.count))]
      let comparisons = BinaryOperator.allCases.filter(\.isComparison)
      solver.assert(comparisons[Int(random.next() % UInt64(comparisons.count))].term(a, b))
    }
    let verdict = try solver.check()
    #expect(!verdict.isUnknown)
    #expect(try verdictOfScript(solver.smtlib2()) == verdict)
  }

  @Test("a deeply shared term is emitted with let-bindings, not expanded")
  func sharedTermStaysSmall() throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    var term = x
    for _ in 0..<60 { term = (term &* term) &+ x }
    let script = try context.smtlib2(asserting: [term.equals(x)])
    #expect(script.count < 20_000)
    let reparsed = try context.parse(smtlib2: script)
    #expect(reparsed == [term.equals(x)])
  }
}
