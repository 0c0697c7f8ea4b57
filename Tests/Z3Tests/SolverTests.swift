import Testing
import Z3

/// The solver kinds every solver test runs with.
let solverKinds: [Solver.Kind] = [.simple, .default, .logic("QF_BV")]

@Suite("Solver")
struct SolverTests {
  @Test("a satisfiable query gives a model that satisfies every assertion", arguments: solverKinds)
  func satisfiableGivesModel(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    let x = context.bitVectorVariable("x", width: 16)
    let y = context.bitVectorVariable("y", width: 16)
    let one = context.bitVector(1, width: 16)
    let limit = context.bitVector(256, width: 16)
    solver.assert((x &* y).equals(context.bitVector(391, width: 16)))  // 17 * 23
    solver.assert([x.unsignedGreaterThan(one), y.unsignedGreaterThan(one), x.unsignedLessThan(y)])
    solver.assert([x.unsignedLessThan(limit), y.unsignedLessThan(limit)])  // no wrap-around
    #expect(try solver.check() == .satisfiable)
    let model = try solver.model()
    for assertion in solver.assertions {
      #expect(try model.bool(of: assertion, completion: true) == true)
    }
    let a = try #require(try model.uint64(of: x))
    let b = try #require(try model.uint64(of: y))
    #expect(a == 17 && b == 23)
  }

  @Test("an unsatisfiable query is unsat and has no model", arguments: solverKinds)
  func unsatisfiableIsUnsat(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    let x = context.bitVectorVariable("x", width: 8)
    solver.assert(x.unsignedLessThan(context.bitVector(3, width: 8)))
    solver.assert(
      (x &+ context.bitVector(1, width: 8)).unsignedGreaterThan(context.bitVector(5, width: 8)))
    #expect(try solver.check() == .unsatisfiable)
    let error = #expect(throws: Z3Error.self) { try solver.model() }
    #expect(error?.code == .invalidUsage)
  }

  @Test("the default solver kind is the simple solver")
  func defaultKindIsSimple() throws {
    #expect(try Solver(context: Context()).kind == .simple)
  }

  @Test("pop removes the assertions made since the matching push", arguments: solverKinds)
  func pushPopRestores(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    let x = context.bitVectorVariable("x", width: 8)
    solver.assert(x.equals(context.bitVector(1, width: 8)))
    #expect(try solver.check() == .satisfiable)
    solver.push()
    solver.assert(x.equals(context.bitVector(2, width: 8)))
    solver.push()
    solver.assert(context.bool(true))
    #expect(solver.scopeCount == 2)
    #expect(solver.assertions.count == 3)
    #expect(try solver.check() == .unsatisfiable)
    solver.pop(2)
    #expect(solver.scopeCount == 0)
    #expect(solver.assertions.count == 1)
    #expect(try solver.check() == .satisfiable)
    #expect(try solver.model().uint64(of: x) == 1)
  }

  @Test(
    "check(assuming:) uses the assumptions for one check only and gives a core",
    arguments: solverKinds)
  func checkAssuming(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    let x = context.bitVectorVariable("x", width: 8)
    let p = context.boolVariable("p")
    let q = context.boolVariable("q")
    let r = context.boolVariable("r")
    solver.assert(p.implies(x.equals(context.bitVector(1, width: 8))))
    solver.assert(q.implies(x.equals(context.bitVector(2, width: 8))))
    #expect(try solver.check(assuming: [p, q, r]) == .unsatisfiable)
    let core = Set(try solver.unsatCore())
    #expect(core.isSubset(of: [p, q, r]))
    #expect(core.contains(p) && core.contains(q))
    #expect(try solver.check(assuming: [p, r]) == .satisfiable)
    #expect(try solver.model().uint64(of: x) == 1)
    #expect(try solver.check(assuming: [q]) == .satisfiable)
    #expect(try solver.model().uint64(of: x) == 2)
    #expect(try solver.check() == .satisfiable)
    #expect(solver.assertions.count == 2)
    // Assumptions need not be variables.
    #expect(
      try solver.check(assuming: [x.equals(context.bitVector(3, width: 8)), p]) == .unsatisfiable)
  }

  @Test(
    "a resource limit of 1 on a hard query answers unknown, never sat or unsat",
    arguments: solverKinds)
  func resourceLimitGivesUnknown(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    solver.assert(hardQuery(context))
    solver.resourceLimit = 1
    let verdict = try solver.check()
    #expect(verdict.isUnknown, "expected unknown under rlimit 1, got \(verdict)")
  }

  @Test(
    "the resource limit applies per check and can be lifted and restored on one solver",
    arguments: solverKinds)
  func resourceLimitCanBeLifted(kind: Solver.Kind) throws {
    let context = Context()
    let solver = try Solver(context: context, kind: kind)
    let x = context.bitVectorVariable("x", width: 8)
    solver.assert(x.unsignedGreaterThan(context.bitVector(5, width: 8)))
    solver.resourceLimit = 1  // stops even this trivial query (measured on all three kinds)
    #expect(try solver.check().isUnknown)
    solver.resourceLimit = nil
    #expect(try solver.check() == .satisfiable)
    solver.resourceLimit = 1
    #expect(try solver.check().isUnknown)
    solver.resourceLimit = 1_000_000
    #expect(try solver.check() == .satisfiable)
  }

  @Test("a short timeout on a hard query answers unknown promptly")
  func timeoutGivesUnknown() throws {
    let context = Context()
    let solver = try Solver(context: context)
    solver.assert(hardQuery(context))
    solver.timeoutMilliseconds = 50
    let clock = ContinuousClock()
    let start = clock.now
    let verdict = try solver.check()
    let elapsed = clock.now - start
    #expect(verdict.isUnknown, "expected unknown under a 50 ms timeout, got \(verdict)")
    #expect(elapsed < .seconds(10))
  }

  @Test("an unknown logic name throws instead of creating a solver")
  func unknownLogicThrows() {
    let error = #expect(throws: Z3Error.self) {
      try Solver(context: Context(), kind: .logic("NO_SUCH_LOGIC"))
    }
    #expect(error?.message.isEmpty == false)
  }

  @Test("a model or core is refused before any check and after the query changes")
  func staleModelRefused() throws {
    let context = Context()
    let solver = try Solver(context: context)
    #expect(
      throws: Z3Error(code: .invalidUsage, message: "no model: the last check was not satisfiable")
    ) {
      try solver.model()
    }
    #expect(throws: Z3Error.self) { try solver.unsatCore() }
    let x = context.bitVectorVariable("x", width: 8)
    solver.assert(x.equals(context.bitVector(1, width: 8)))
    #expect(try solver.check() == .satisfiable)
    #expect(try solver.model().uint64(of: x) == 1)
    #expect(throws: Z3Error.self) { try solver.unsatCore() }
    solver.assert(x.equals(context.bitVector(2, width: 8)))
    #expect(throws: Z3Error.self) { try solver.model() }
    #expect(try solver.check() == .unsatisfiable)
    #expect(try solver.unsatCore().isEmpty)
    solver.push()
    #expect(throws: Z3Error.self) { try solver.unsatCore() }
  }
}
