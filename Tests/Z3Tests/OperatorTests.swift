import Testing
import Z3

/// A binary bit-vector operation, its Swift reference on `UInt64`, and its term builder.
enum BinaryOperator: String, CaseIterable, Sendable, CustomStringConvertible {
  case and, or, xor, add, subtract, multiply, shiftLeft, logicalShiftRight
  case equal, unsignedLessThan, unsignedLessThanOrEqual
  case unsignedGreaterThan, unsignedGreaterThanOrEqual

  var description: String { rawValue }

  /// A seed that is stable across runs (unlike `hashValue`).
  var seed: UInt64 { UInt64(Self.allCases.firstIndex(of: self) ?? 0) }

  /// Whether the result is Boolean (then the reference returns 0 or 1).
  var isComparison: Bool {
    switch self {
    case .equal, .unsignedLessThan, .unsignedLessThanOrEqual, .unsignedGreaterThan,
      .unsignedGreaterThanOrEqual:
      true
    default: false
    }
  }

  func term(_ a: Term, _ b: Term) -> Term {
    switch self {
    case .and: a & b
    case .or: a | b
    case .xor: a ^ b
    case .add: a &+ b
    case .subtract: a &- b
    case .multiply: a &* b
    case .shiftLeft: a.shiftedLeft(by: b)
    case .logicalShiftRight: a.logicalShiftedRight(by: b)
    case .equal: a.equals(b)
    case .unsignedLessThan: a.unsignedLessThan(b)
    case .unsignedLessThanOrEqual: a.unsignedLessThanOrEqual(b)
    case .unsignedGreaterThan: a.unsignedGreaterThan(b)
    case .unsignedGreaterThanOrEqual: a.unsignedGreaterThanOrEqual(b)
    }
  }

  func reference(_ a: UInt64, _ b: UInt64, width: Int) -> UInt64 {
    let w = UInt64(width)
    let result: UInt64 =
      switch self {
      case .and: a & b
      case .or: a | b
      case .xor: a ^ b
      case .add: a &+ b
      case .subtract: a &- b
      case .multiply: a &* b
      case .shiftLeft: b >= w ? 0 : a << b
      case .logicalShiftRight: b >= w ? 0 : a >> b
      case .equal: a == b ? 1 : 0
      case .unsignedLessThan: a < b ? 1 : 0
      case .unsignedLessThanOrEqual: a <= b ? 1 : 0
      case .unsignedGreaterThan: a > b ? 1 : 0
      case .unsignedGreaterThanOrEqual: a >= b ? 1 : 0
      }
    return result & mask(width)
  }
}

/// Reads a bit-vector or Boolean constant as a number (Booleans as 0 or 1).
func number(_ term: Term) -> UInt64? {
  if let bool = term.boolValue { return bool ? 1 : 0 }
  return term.uint64Value
}

@Suite("Operators agree with Swift's UInt64 arithmetic")
struct OperatorTests {
  @Test(
    "each binary operator agrees with Swift under a model built from an assignment",
    arguments: BinaryOperator.allCases, testWidths)
  func binaryOperatorUnderAssignment(operation: BinaryOperator, width: Int) throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: width)
    let y = context.bitVectorVariable("y", width: width)
    let term = operation.term(x, y)
    #expect(term.sort == (operation.isComparison ? .bool : .bitVector(width: width)))
    var random = SeededGenerator(seed: UInt64(width) << 8 | operation.seed)
    for _ in 0..<200 {
      let a = random.value(width: width)
      // Shift amounts mostly below the width, where shifting is not trivially zero.
      let b = random.next() % 2 == 0 ? random.value(width: width) : random.next() % UInt64(width)
      let model = try context.model(assigning: [
        (x, context.bitVector(a, width: width)), (y, context.bitVector(b, width: width)),
      ])
      let value = try model.evaluate(term, completion: false)
      #expect(number(value) == operation.reference(a, b, width: width), "\(operation) \(a) \(b)")
    }
  }

  @Test(
    "each binary operator on numerals simplifies to Swift's result",
    arguments: BinaryOperator.allCases, testWidths)
  func binaryOperatorBySimplify(operation: BinaryOperator, width: Int) throws {
    let context = Context()
    var random = SeededGenerator(seed: 0x51 ^ UInt64(width) << 8 | operation.seed)
    for _ in 0..<200 {
      let a = random.value(width: width)
      let b = random.next() % 2 == 0 ? random.value(width: width) : random.next() % UInt64(width)
      let term = operation.term(
        context.bitVector(a, width: width), context.bitVector(b, width: width))
      let simplified = try context.simplify(term)
      #expect(
        number(simplified) == operation.reference(a, b, width: width), "\(operation) \(a) \(b)")
    }
  }

  @Test(
    "not, constant shifts, extract, zero-extension and concat agree with Swift",
    arguments: testWidths)
  func unaryOperators(width: Int) throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: width)
    var random = SeededGenerator(seed: 0xC0FFEE ^ UInt64(width))
    for _ in 0..<100 {
      let a = random.value(width: width)
      let bits = Int(random.next() % UInt64(width + 2))
      let low = Int(random.next() % UInt64(width))
      let high = low + Int(random.next() % UInt64(width - low))
      let extra = Int(random.next() % UInt64(64 - width + 1))
      let otherWidth = max(1, Int(random.next() % UInt64(64 - width + 1)))
      let b = random.value(width: otherWidth)
      let cases: [(Term, UInt64)] = [
        (~x, ~a & mask(width)),
        (x.shiftedLeft(by: bits), bits >= width ? 0 : (a << UInt64(bits)) & mask(width)),
        (x.logicalShiftedRight(by: bits), bits >= width ? 0 : a >> UInt64(bits)),
        (x.extract(high: high, low: low), (a >> UInt64(low)) & mask(high - low + 1)),
        (x.zeroExtended(by: extra), a),
      ]
      let model = try context.model(assigning: [(x, context.bitVector(a, width: width))])
      for (term, expected) in cases {
        #expect(try model.uint64(of: term) == expected, "\(term) with x = \(a)")
      }
      if width + otherWidth <= 64 {
        let joined = x.concatenated(with: context.bitVector(b, width: otherWidth))
        #expect(joined.width == width + otherWidth)
        #expect(try model.uint64(of: joined) == a << UInt64(otherWidth) | b)
      }
      #expect(x.extract(high: high, low: low).width == high - low + 1)
      #expect(x.zeroExtended(by: extra).width == width + extra)
    }
  }

  @Test("if-then-else picks the branch its condition selects")
  func ifThenElse() throws {
    let context = Context()
    let p = context.boolVariable("p")
    let x = context.bitVectorVariable("x", width: 32)
    let y = context.bitVectorVariable("y", width: 32)
    let term = context.ifThenElse(p, then: x, else: y)
    #expect(term.width == 32)
    for condition in [false, true] {
      let model = try context.model(assigning: [
        (p, context.bool(condition)), (x, context.bitVector(7, width: 32)),
        (y, context.bitVector(9, width: 32)),
      ])
      #expect(try model.uint64(of: term) == (condition ? 7 : 9))
    }
  }

  @Test("Boolean connectives match their truth tables, n-ary and/or included")
  func booleanTruthTables() throws {
    let context = Context()
    let variables = (0..<4).map { context.boolVariable("p\($0)") }
    #expect(try context.simplify(context.and([])).boolValue == true)
    #expect(try context.simplify(context.or([])).boolValue == false)
    for bits in 0..<16 {
      let values = (0..<4).map { bits >> $0 & 1 == 1 }
      let model = try context.model(
        assigning: zip(variables, values).map { ($0, context.bool($1)) })
      let (p, q) = (variables[0], variables[1])
      let (a, b) = (values[0], values[1])
      #expect(try model.bool(of: p.not()) == !a)
      #expect(try model.bool(of: p.implies(q)) == (!a || b))
      #expect(try model.bool(of: p.xor(q)) == (a != b))
      #expect(try model.bool(of: p.iff(q)) == (a == b))
      #expect(try model.bool(of: p.equals(q)) == (a == b))
      #expect(try model.bool(of: context.and(variables)) == values.allSatisfy { $0 })
      #expect(try model.bool(of: context.or(variables)) == values.contains(true))
      #expect(try model.bool(of: context.and([p])) == a)
      #expect(try model.bool(of: p.and(q)) == (a && b))
      #expect(try model.bool(of: p.or(q)) == (a || b))
    }
  }

  @Test("distinct holds exactly when all values differ pairwise")
  func distinctValues() throws {
    let context = Context()
    let numbers = [1, 2, 3, 2].map { context.bitVector(UInt64($0), width: 8) }
    #expect(try context.simplify(context.distinct(Array(numbers.prefix(3)))).boolValue == true)
    #expect(try context.simplify(context.distinct(numbers)).boolValue == false)
  }

  @Test(
    "unsigned comparisons differ from signed ones when the top bit is set",
    arguments: testWidths.filter { $0 > 1 })
  func unsignedIsNotSigned(width: Int) throws {
    let context = Context()
    var random = SeededGenerator(seed: 0x5167 ^ UInt64(width))
    for _ in 0..<50 {
      let top = UInt64(1) << UInt64(width - 1)
      let negative = (random.next() & mask(width)) | top  // top bit set
      let positive = (random.next() & mask(width)) & ~top  // top bit clear
      let a = context.bitVector(negative, width: width)
      let b = context.bitVector(positive, width: width)
      // Unsigned: the value with the top bit set is the larger one.
      #expect(try context.simplify(a.unsignedLessThan(b)).boolValue == false)
      #expect(try context.simplify(a.unsignedGreaterThan(b)).boolValue == true)
      #expect(try context.simplify(a.unsignedGreaterThanOrEqual(b)).boolValue == true)
      #expect(try context.simplify(a.unsignedLessThanOrEqual(b)).boolValue == false)
      // Signed (Z3's bvslt, reachable only through SMT-LIB2 text): the opposite verdict.
      let script = "(assert (bvslt \(a) \(b)))"
      let signed = try #require(try context.parse(smtlib2: script).first)
      #expect(try context.simplify(signed).boolValue == true)
    }
  }

  @Test("substitute replaces variables simultaneously")
  func substitution() throws {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 16)
    let y = context.bitVectorVariable("y", width: 16)
    let term = (x &- y) ^ x
    let swapped = try context.substitute(term, from: [x, y], to: [y, x])
    #expect(swapped == (y &- x) ^ y)
    let concrete = try context.substitute(
      term, from: [x, y],
      to: [context.bitVector(1000, width: 16), context.bitVector(1, width: 16)])
    #expect(try context.simplify(concrete).uint64Value == (999 ^ 1000))
  }
}
