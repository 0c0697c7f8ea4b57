import CZ3
import Testing
import Z3

@Suite("Reference counting, speed of concrete evaluation, and concurrency")
struct ResourceTests {
  @Test("many terms created and dropped in a loop keep the right values (refcount discipline)")
  func manyTermsInALoop() throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 64)
    var accumulator = context.bitVector(0, width: 64)
    var expected: UInt64 = 0
    for index in 0..<20_000 {
      // Fresh numerals, each wrapped before the next call; most are dropped at once.
      let value = UInt64(index) &* 0x9E37_79B9
      let term = (x ^ context.bitVector(value, width: 64)) &+ context.bitVector(value, width: 64)
      _ = term.logicalShiftedRight(by: 3).extract(high: 31, low: 0).zeroExtended(toWidth: 64)
      if index % 100 == 0 {
        accumulator = accumulator &+ context.bitVector(value, width: 64)
        expected &+= value
      }
    }
    #expect(try context.simplify(accumulator).uint64Value == expected)
  }

  @Test("a context is freed once its last term, solver and model are gone")
  func contextIsReleased() throws {
    weak var weakContext: Context?
    do {
      let context = Context()
      weakContext = context
      let solver = try Solver(context: context)
      let x = context.bitVectorVariable("x", width: 8)
      solver.assert(x.equals(context.bitVector(5, width: 8)))
      #expect(try solver.check() == .satisfiable)
      #expect(try solver.model().uint64(of: x) == 5)
      _ = try context.model(assigning: [(x, context.bitVector(1, width: 8))])
    }
    #expect(weakContext == nil)
  }

  @Test("a symbolic term agrees with its Swift counterpart on 10,000 random inputs")
  func concreteEvaluationAtScale() throws {
    let context = Context()
    let names = ["a", "b", "c", "d"]
    let variables = names.map { context.bitVectorVariable($0, width: 64) }
    // A page-table-like computation: masks, shifts, an index, a conditional.
    func symbolic(_ v: [Term]) -> Term {
      let mask = context.bitVector(0x000F_FFFF_FFFF_F000, width: 64)
      let index = v[1].logicalShiftedRight(by: 39) & context.bitVector(0x1FF, width: 64)
      let entry = (v[0] & mask) &+ index.shiftedLeft(by: 3)
      let present = (v[2] & context.bitVector(1, width: 64)).equals(context.bitVector(1, width: 64))
      return context.ifThenElse(present, then: entry ^ v[3], else: context.bitVector(0, width: 64))
    }
    func concrete(_ v: [UInt64]) -> UInt64 {
      let index = (v[1] >> 39) & 0x1FF
      let entry = (v[0] & 0x000F_FFFF_FFFF_F000) &+ (index << 3)
      return v[2] & 1 == 1 ? entry ^ v[3] : 0
    }
    let term = symbolic(variables)
    var random = SeededGenerator(seed: 10_000)
    var mismatches = 0
    for _ in 0..<10_000 {
      let values = (0..<4).map { _ in random.next() }
      let model = try context.model(
        assigning: zip(variables, values).map { ($0, context.bitVector($1, width: 64)) })
      if try model.uint64(of: term) != concrete(values) { mismatches += 1 }
    }
    #expect(mismatches == 0)
  }

  @Test("evaluating under 20,000 fresh models does not grow Z3's memory (no leaked references)")
  func modelsFromAssignmentsDoNotLeak() async {
    // In a child process, so that no other test's allocations disturb Z3's global estimate.
    await #expect(processExitsWith: .success) {
      let context = Context()
      let variables = (0..<4).map { context.bitVectorVariable("v\($0)", width: 64) }
      var term = variables[0]
      for variable in variables { term = (term &* variable) ^ term.logicalShiftedRight(by: 7) }
      var random = SeededGenerator(seed: 7)
      func evaluateMany(_ count: Int) -> Bool {
        for _ in 0..<count {
          let assignment = variables.map { ($0, context.bitVector(random.next(), width: 64)) }
          guard let model = try? context.model(assigning: assignment),
            (try? model.uint64(of: term)) != nil
          else { return false }
        }
        return true
      }
      precondition(evaluateMany(2_000))  // warm-up: caches and tables reach their size
      let before = Z3_get_estimated_alloc_size()
      precondition(evaluateMany(20_000))
      let growth = Int64(Z3_get_estimated_alloc_size()) - Int64(before)
      // Holding one numeral per evaluation would add megabytes (measured ~1.5 KB each).
      precondition(growth < 1 << 20, "Z3 memory grew by \(growth) bytes")
    }
  }

  @Test("50 concurrent tasks, each with its own context, solve correctly")
  func concurrentContexts() async throws {
    let results = try await withThrowingTaskGroup(of: (UInt64, UInt64?).self) { group in
      for task in 0..<50 {
        group.addTask {
          let context = Context()
          let solver = try Solver(context: context)
          let x = context.bitVectorVariable("x", width: 32)
          let target = UInt64(task) * 7 + 1
          // x * 3 + 5 == 3 * target + 5, with x < 2^20, has the unique solution x = target.
          let three = context.bitVector(3, width: 32)
          solver.assert(
            ((x &* three) &+ context.bitVector(5, width: 32))
              .equals(context.bitVector(3 * target + 5, width: 32)))
          solver.assert(x.unsignedLessThan(context.bitVector(1 << 20, width: 32)))
          guard try solver.check() == .satisfiable else { return (target, nil) }
          return (target, try solver.model().uint64(of: x))
        }
      }
      var collected: [(UInt64, UInt64?)] = []
      for try await result in group { collected.append(result) }
      return collected
    }
    #expect(results.count == 50)
    for (target, found) in results { #expect(found == target) }
  }
}
