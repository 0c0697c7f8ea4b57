import Testing
import Z3

@Suite("Numerals and constants")
struct NumeralTests {
  @Test("a numeral of every width 1...64 round-trips through uint64Value", arguments: 1...64)
  func numeralsRoundTrip(width: Int) {
    let context = Context()
    var random = SeededGenerator(seed: UInt64(width))
    for _ in 0..<50 {
      let value = random.value(width: width)
      let term = context.bitVector(value, width: width)
      #expect(term.uint64Value == value)
      #expect(term.width == width)
      #expect(term.sort == .bitVector(width: width))
      #expect(term.isNumeral)
      #expect(term.decimalValue == String(value))
    }
  }

  @Test("a wide numeral built from a decimal string keeps its value and width")
  func wideNumeralFromDecimal() throws {
    let context = Context()
    let value = "340282366920938463463374607431768211455"  // 2^128 - 1
    let term = try context.bitVector(decimal: value, width: 128)
    #expect(term.width == 128)
    #expect(term.decimalValue == value)
    #expect(term.uint64Value == nil)
    let small = try context.bitVector(decimal: "0042", width: 8)
    #expect(small.uint64Value == 42)
  }

  @Test("a decimal numeral that is malformed or does not fit its width throws")
  func badDecimalNumeralsThrow() {
    let context = Context()
    #expect(throws: Z3Error.self) { try context.bitVector(decimal: "12a", width: 8) }
    #expect(throws: Z3Error.self) { try context.bitVector(decimal: "", width: 8) }
    #expect(throws: Z3Error.self) { try context.bitVector(decimal: "-1", width: 8) }
    #expect(throws: Z3Error.self) { try context.bitVector(decimal: "256", width: 8) }
    #expect(throws: Z3Error.self) { try context.bitVector(decimal: "1", width: 0) }
  }

  @Test("Boolean constants read back, and variables are neither numerals nor constants")
  func constantInspection() {
    let context = Context()
    #expect(context.bool(true).boolValue == true)
    #expect(context.bool(false).boolValue == false)
    let p = context.boolVariable("p")
    let x = context.bitVectorVariable("x", width: 16)
    #expect(p.boolValue == nil)
    #expect(p.sort == .bool)
    #expect(p.width == nil)
    #expect(x.uint64Value == nil)
    #expect(!x.isNumeral)
    #expect(x.width == 16)
    #expect(context.bitVector(1, width: 1).boolValue == nil)
  }

  @Test("terms are equal exactly when they are the same expression (hash-consing)")
  func termIdentity() {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    let y = context.bitVectorVariable("y", width: 8)
    #expect((x & y) == (x & y))
    #expect((x & y) != (y & x))
    #expect(Set([x & y, x & y, x | y]).count == 2)
    #expect(context.bitVectorVariable("x", width: 8) == x)
    #expect(context.bitVectorVariable("x", width: 9) != x)
  }

  @Test("a term prints as SMT-LIB2, sharing subterms instead of expanding the DAG")
  func descriptionSharesSubterms() {
    let context = Context()
    let x = context.bitVectorVariable("x", width: 8)
    var term = x
    for _ in 0..<60 { term = (term &* term) &+ x }
    let text = term.description
    #expect(text.count < 10_000)
    #expect(text.contains("let"))
    #expect(context.bitVector(0x2a, width: 8).description == "#x2a")
  }
}
