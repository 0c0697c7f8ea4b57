/// Up to five values, one per paging level, stored inline.
///
/// A walk visits at most five levels. Keeping its per-level records inline, not in a heap
/// array, makes a concrete walk allocation-free; symbolically it changes nothing.
struct LevelList<Element>: RandomAccessCollection {
  private var storage: InlineArray<5, Element?> = InlineArray(repeating: nil)
  /// The number of values held.
  private(set) var count = 0

  init() {}

  /// Appends a value; there is room for five.
  mutating func append(_ element: Element) {
    precondition(count < 5, "a walk has at most five levels")
    storage[count] = element
    count += 1
  }

  /// Calls `body` on each value in order, borrowing the list rather than copying it into an
  /// iterator (a `for`-`in` loop copies the whole inline storage).
  func forEach(_ body: (Element) throws -> Void) rethrows {
    for i in 0..<count { try body(self[i]) }
  }

  /// Calls `body` on each position and value in order, borrowing the list.
  func forEachIndexed(_ body: (Int, Element) throws -> Void) rethrows {
    for i in 0..<count { try body(i, self[i]) }
  }

  var startIndex: Int { 0 }
  var endIndex: Int { count }

  subscript(position: Int) -> Element {
    get {
      precondition(position < count, "index out of range")
      guard let element = storage[position] else { preconditionFailure("unset level") }
      return element
    }
    set {
      precondition(position < count, "index out of range")
      storage[position] = newValue
    }
  }
}
