import ReferenceModel

/// Host physical memory for the symbolic interpretation: a finite set of populated words, each
/// a constant or a term, and zero everywhere else.
///
/// ENGINEERING-NOTES: an unconstrained symbolic memory produced counterexamples the concrete
/// model refuted; memory must read zero exactly where the concrete memory does. A read at a
/// known address is a lookup; a read at a symbolic address is an if-then-else chain over every
/// populated word, defaulting to zero.
public struct SymbolicMemory {
  /// The populated words by 8-byte-aligned address.
  public let words: [UInt64: Symbolic.Word]
  private let addresses: [UInt64]

  /// Memory holding `words`; every other address reads zero.
  public init(words: [UInt64: Symbolic.Word]) {
    self.words = words
    addresses = words.keys.sorted()
  }

  /// The word at an 8-byte-aligned address.
  func load(_ d: Symbolic, _ address: Symbolic.Word) -> Symbolic.Word {
    if case .constant(let a) = address { return words[a] ?? .constant(0) }
    var result = Symbolic.Word.constant(0)
    for candidate in addresses.reversed() {
      guard let value = words[candidate] else { continue }
      result = d.select(d.equal(address, .constant(candidate)), value, result)
    }
    return result
  }
}
