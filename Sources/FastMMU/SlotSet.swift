/// Which slots of a direct-mapped cache are occupied (or have some property): a bitmap of one
/// bit per slot with a summary of one bit per bitmap word, so visiting the members costs
/// time in proportion to how many there are, not to the cache's size. The TLB keeps one for
/// its entries and one for its large-page pieces, a paging-structure cache one for its
/// entries: invalidations that reach many entries visit only those that exist.
///
/// | word                | bit `b` set when                                              |
/// |---------------------|---------------------------------------------------------------|
/// | `words[w]`          | slot `64·w + b` is a member                                   |
/// | `summary[s]`        | `words[64·s + b]` is nonzero                                  |
///
/// A plain value over storage its owner allocates and frees (``allocate(slots:)``,
/// ``deallocate()``), so walkers hold it in a handle without reference counting.
struct SlotSet {
  let words: UnsafeMutablePointer<UInt64>
  let summary: UnsafeMutablePointer<UInt64>
  /// The number of bitmap words (slots / 64, rounded up).
  let wordCount: Int
  /// The number of summary words.
  let summaryCount: Int

  /// An empty set over `slots` slots.
  static func allocate(slots: Int) -> SlotSet {
    let wordCount = max(1, (slots + 63) / 64)
    let summaryCount = (wordCount + 63) / 64
    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: wordCount)
    words.initialize(repeating: 0, count: wordCount)
    let summary = UnsafeMutablePointer<UInt64>.allocate(capacity: summaryCount)
    summary.initialize(repeating: 0, count: summaryCount)
    return SlotSet(
      words: words, summary: summary, wordCount: wordCount, summaryCount: summaryCount)
  }

  /// Frees the storage.
  func deallocate() {
    words.deallocate()
    summary.deallocate()
  }

  /// Adds `slot`. A slot already in costs one load and no store: a full TLB's fills refill
  /// occupied slots.
  @inline(__always)
  func insert(_ slot: Int) {
    let word = slot &>> 6
    let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: slot & 63)
    let current = words[word]
    guard current & bit == 0 else { return }
    words[word] = current | bit
    summary[word &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: word & 63)
  }

  /// Removes `slot` (a slot that is not a member stays out, at the cost of one load).
  @inline(__always)
  func remove(_ slot: Int) {
    let word = slot &>> 6
    let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: slot & 63)
    let current = words[word]
    guard current & bit != 0 else { return }
    words[word] = current & ~bit
    if current == bit {
      summary[word &>> 6] &= ~(1 &<< UInt64(truncatingIfNeeded: word & 63))
    }
  }

  /// Whether `slot` is a member.
  @inline(__always)
  func contains(_ slot: Int) -> Bool {
    words[slot &>> 6] &>> UInt64(truncatingIfNeeded: slot & 63) & 1 != 0
  }

  /// Whether there is no member.
  var isEmpty: Bool {
    for index in 0..<summaryCount where summary[index] != 0 { return false }
    return true
  }

  /// The number of members.
  var count: Int {
    var total = 0
    for index in 0..<wordCount { total += words[index].nonzeroBitCount }
    return total
  }

  /// Calls `body` with each member, ascending. `body` may remove the slot it is given (or
  /// any slot already visited), and add slots, which the visit may or may not reach.
  @inline(__always)
  func forEach(_ body: (Int) -> Void) {
    for summaryIndex in 0..<summaryCount {
      var nonzero = summary[summaryIndex]
      while nonzero != 0 {
        let word = summaryIndex &<< 6 | nonzero.trailingZeroBitCount
        nonzero &= nonzero &- 1
        var bits = words[word]
        while bits != 0 {
          let slot = word &<< 6 | bits.trailingZeroBitCount
          bits &= bits &- 1
          body(slot)
        }
      }
    }
  }

  /// Removes every member.
  func removeAll() {
    for summaryIndex in 0..<summaryCount {
      var nonzero = summary[summaryIndex]
      while nonzero != 0 {
        words[summaryIndex &<< 6 | nonzero.trailingZeroBitCount] = 0
        nonzero &= nonzero &- 1
      }
      summary[summaryIndex] = 0
    }
  }
}
