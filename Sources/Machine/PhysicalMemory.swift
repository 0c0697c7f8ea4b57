/// Host physical memory as a sparse map of aligned 64-bit words.
///
/// This is the storage form of a snapshot: what a hypervisor dumps and what the JSON format
/// holds. Words that are absent read as zero. Implementations that need speed (the reference
/// model's concrete interpretation, the fast MMU) build their own frame-indexed copies from it.
public struct PhysicalMemory: Hashable, Sendable {
  /// The populated words, keyed by their 8-byte-aligned physical address.
  public private(set) var words: [UInt64: UInt64]

  /// Empty memory: every word reads zero.
  public init() { words = [:] }

  /// Memory holding these words; every address must be 8-byte aligned.
  public init(words: [UInt64: UInt64]) {
    precondition(words.keys.allSatisfy { $0 & 7 == 0 }, "word addresses must be 8-byte aligned")
    self.words = words
  }

  /// The word at an 8-byte-aligned physical address; zero where nothing was written.
  /// Writing zero removes the word, so equal contents compare equal.
  public subscript(address: UInt64) -> UInt64 {
    get { words[address] ?? 0 }
    set {
      precondition(address & 7 == 0, "word addresses must be 8-byte aligned")
      words[address] = newValue == 0 ? nil : newValue
    }
  }

  /// The frame numbers (address >> 12) of every 4-KiB page holding a nonzero word, ascending.
  public var populatedFrames: [UInt64] {
    Set(words.keys.map { $0 >> 12 }).sorted()
  }
}
