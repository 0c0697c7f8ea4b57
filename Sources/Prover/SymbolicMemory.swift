import Machine
import ReferenceModel

/// Host physical memory for the symbolic interpretation: a finite set of populated words, each
/// a constant or a term, and zero everywhere else.
///
/// ENGINEERING-NOTES: an unconstrained symbolic memory produced counterexamples the concrete
/// model refuted; memory must read zero exactly where the concrete memory does. A read at a
/// known address is a lookup. A read at an address whose high bits are known (a table frame
/// with a symbolic index) is an if-then-else over the populated words in that range only, each
/// candidate the domain's facts exclude left out; a read at a wholly symbolic address is an
/// if-then-else over every populated word, defaulting to zero. Lane-wise addresses read lane by
/// lane.
public struct SymbolicMemory {
  /// The populated words that are terms, by 8-byte-aligned address.
  public let words: [UInt64: Symbolic.Word]
  /// The populated words that are constants.
  private let concrete: FrameMemory
  /// Every populated address (constant or term), ascending.
  private let addresses: [UInt64]

  /// Memory holding `words`; every other address reads zero.
  public init(words: [UInt64: Symbolic.Word]) {
    var constants = PhysicalMemory()
    var terms: [UInt64: Symbolic.Word] = [:]
    for (address, value) in words {
      if case .constant(let v) = value { constants[address] = v } else { terms[address] = value }
    }
    self.words = terms
    concrete = FrameMemory(constants)
    addresses = words.keys.sorted()
  }

  /// Memory holding a snapshot's words, all constants.
  public init(_ memory: PhysicalMemory) {
    words = [:]
    concrete = FrameMemory(memory)
    addresses = memory.words.keys.sorted()
  }

  /// The word stored at a known address.
  func stored(_ address: UInt64) -> Symbolic.Word {
    if let value = words[address] { return value }
    return .constant(concrete[address])
  }

  /// The word at an 8-byte-aligned address.
  func load(_ d: Symbolic, _ address: Symbolic.Word) -> Symbolic.Word {
    switch address {
    case .constant(let a): return stored(a)
    case .lanes(let values):
      if words.isEmpty { return d.normalize(values.map { concrete[$0] }) }
      return d.normalize(values.map(stored))
    case .mixed(let values): return d.normalize(values.map { load(d, $0) })
    case .partial(let high, let width, _):
      return choose(d, address, among: candidates(from: high, count: 1 << UInt64(width)))
    case .term:
      return choose(d, address, among: addresses[...])
    }
  }

  /// The populated addresses in `[low, low + count)`.
  private func candidates(from low: UInt64, count: UInt64) -> ArraySlice<UInt64> {
    let start = firstIndex(notBelow: low)
    let (end, overflow) = low.addingReportingOverflow(count)
    let stop = overflow ? addresses.count : firstIndex(notBelow: end)
    return addresses[start..<stop]
  }

  private func firstIndex(notBelow value: UInt64) -> Int {
    var low = 0
    var high = addresses.count
    while low < high {
      let middle = (low + high) / 2
      if addresses[middle] < value { low = middle + 1 } else { high = middle }
    }
    return low
  }

  /// An if-then-else over `candidates`, defaulting to zero.
  private func choose(
    _ d: Symbolic, _ address: Symbolic.Word, among candidates: ArraySlice<UInt64>
  ) -> Symbolic.Word {
    var result = Symbolic.Word.constant(0)
    for candidate in candidates.reversed() {
      let value = stored(candidate)
      if case .constant(0) = value { continue }
      result = d.select(d.equal(address, .constant(candidate)), value, result)
    }
    return result
  }
}
