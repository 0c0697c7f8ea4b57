import Machine

/// The concrete interpretation: words are `UInt64`, flags are `Bool`, memory is a
/// ``FrameMemory``. Running the model in this domain is the executable oracle.
public struct Concrete: BitVectorDomain, Sendable {
  /// A 64-bit value.
  public typealias Word = UInt64
  /// A truth value.
  public typealias Flag = Bool
  /// Frame-indexed host physical memory.
  public typealias Memory = FrameMemory

  /// The concrete domain has no state.
  public init() {}

  /// The value itself.
  @inline(__always) public func word(_ value: UInt64) -> UInt64 { value }
  /// The value itself.
  @inline(__always) public func flag(_ value: Bool) -> Bool { value }
  /// `a & b`.
  @inline(__always) public func bitAnd(_ a: UInt64, _ b: UInt64) -> UInt64 { a & b }
  /// `a | b`.
  @inline(__always) public func bitOr(_ a: UInt64, _ b: UInt64) -> UInt64 { a | b }
  /// `a ^ b`.
  @inline(__always) public func bitXor(_ a: UInt64, _ b: UInt64) -> UInt64 { a ^ b }
  /// `~a`.
  @inline(__always) public func bitNot(_ a: UInt64) -> UInt64 { ~a }
  /// `a &+ b`.
  @inline(__always) public func add(_ a: UInt64, _ b: UInt64) -> UInt64 { a &+ b }
  /// `a << bits` (the protocol's constant amounts are 0…63, so the masking shift is exact).
  @inline(__always) public func shiftLeft(_ a: UInt64, _ bits: Int) -> UInt64 {
    a &<< UInt64(truncatingIfNeeded: bits)
  }
  /// `a >> bits` (logical: `UInt64` is unsigned; amounts are 0…63 as for `shiftLeft`).
  @inline(__always) public func shiftRight(_ a: UInt64, _ bits: Int) -> UInt64 {
    a &>> UInt64(truncatingIfNeeded: bits)
  }
  /// `a >> amount`, zero for amounts of 64 or more.
  @inline(__always) public func shiftRight(_ a: UInt64, by amount: UInt64) -> UInt64 {
    amount >= 64 ? 0 : a >> amount
  }
  /// `a == b`.
  @inline(__always) public func equal(_ a: UInt64, _ b: UInt64) -> Bool { a == b }
  /// `a < b` (unsigned: `UInt64`).
  @inline(__always) public func unsignedLess(_ a: UInt64, _ b: UInt64) -> Bool { a < b }
  /// `a && b`.
  @inline(__always) public func and(_ a: Bool, _ b: Bool) -> Bool { a && b }
  /// `a || b`.
  @inline(__always) public func or(_ a: Bool, _ b: Bool) -> Bool { a || b }
  /// `!a`.
  @inline(__always) public func not(_ a: Bool) -> Bool { !a }
  /// `condition ? a : b`.
  @inline(__always) public func select(_ condition: Bool, _ a: UInt64, _ b: UInt64) -> UInt64 {
    condition ? a : b
  }
  /// `condition ? a : b`.
  @inline(__always) public func select(_ condition: Bool, _ a: Bool, _ b: Bool) -> Bool {
    condition ? a : b
  }
  /// The stored word.
  @inline(__always) public func load(_ memory: FrameMemory, _ address: UInt64) -> UInt64 {
    memory[address]
  }
  /// The flag itself: every concrete flag is definite.
  @inline(__always) public func known(_ flag: Bool) -> Bool? { flag }
}

/// Host physical memory for the concrete interpretation: 4-KiB pages in one flat array, found
/// through a small open-addressing table from frame number to page slot.
///
/// ENGINEERING-NOTES: dictionary lookups dominate a walk over a dictionary memory; a flat
/// page-frame array is much faster. The frame table stays small (a few thousand frames hold
/// every table of B1), so it lives in cache and a load costs one miss at most: the page's.
/// Page slot 0 is a page of zeros that every absent frame reads from.
public struct FrameMemory: Sendable {
  private var words: [UInt64]
  /// Frame number + 1 per bucket; 0 marks an empty bucket.
  private var keys: [UInt64]
  private var slots: [Int32]
  private var occupied = 0

  /// Copies a snapshot's memory.
  public init(_ memory: PhysicalMemory) {
    words = [UInt64](repeating: 0, count: 512)
    let frames = memory.populatedFrames
    var capacity = 64
    while capacity < frames.count * 2 { capacity *= 2 }
    keys = [UInt64](repeating: 0, count: capacity)
    slots = [Int32](repeating: 0, count: capacity)
    for (address, value) in memory.words {
      let slot = self.slot(creating: address >> 12)
      words[slot * 512 + Int((address & 0xFFF) >> 3)] = value
    }
  }

  @inline(__always) private static func bucket(_ frame: UInt64, _ mask: Int) -> Int {
    Int(truncatingIfNeeded: (frame &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
  }

  @inline(__always)
  private func slot(of frame: UInt64) -> Int {
    let mask = keys.count - 1
    var i = Self.bucket(frame, mask)
    while true {
      let key = keys[i]
      if key == frame &+ 1 { return Int(slots[i]) }
      if key == 0 { return 0 }
      i = (i &+ 1) & mask
    }
  }

  private mutating func slot(creating frame: UInt64) -> Int {
    let existing = slot(of: frame)
    if existing != 0 { return existing }
    if (occupied + 1) * 2 > keys.count { grow() }
    let fresh = words.count / 512
    words.append(contentsOf: repeatElement(0, count: 512))
    insert(frame, slot: fresh)
    return fresh
  }

  private mutating func insert(_ frame: UInt64, slot: Int) {
    let mask = keys.count - 1
    var i = Self.bucket(frame, mask)
    while keys[i] != 0 { i = (i &+ 1) & mask }
    keys[i] = frame &+ 1
    slots[i] = Int32(slot)
    occupied += 1
  }

  private mutating func grow() {
    let old = zip(keys, slots).filter { $0.0 != 0 }
    keys = [UInt64](repeating: 0, count: keys.count * 2)
    slots = [Int32](repeating: 0, count: keys.count)
    occupied = 0
    for (key, slot) in old { insert(key &- 1, slot: Int(slot)) }
  }

  /// The word at an 8-byte-aligned address; zero where nothing is stored.
  public subscript(address: UInt64) -> UInt64 {
    @inline(__always) get {
      words[slot(of: address >> 12) &* 512 &+ Int(truncatingIfNeeded: (address & 0xFFF) >> 3)]
    }
    set {
      let slot = self.slot(creating: address >> 12)
      words[slot * 512 + Int((address & 0xFFF) >> 3)] = newValue
    }
  }

  /// Calls `body` with every non-zero word and its address, frame by frame (in no particular
  /// order of frames): what ``snapshot`` holds, without building it.
  public func forEachWord(_ body: (_ address: UInt64, _ value: UInt64) -> Void) {
    for (key, slot) in zip(keys, slots) where key != 0 {
      let frame = key &- 1
      let base = Int(slot) * 512
      for i in 0..<512 where words[base + i] != 0 {
        body(frame << 12 | UInt64(i) << 3, words[base + i])
      }
    }
  }

  /// The contents as a sparse snapshot memory.
  public var snapshot: PhysicalMemory {
    var result = PhysicalMemory()
    for (key, slot) in zip(keys, slots) where key != 0 {
      let frame = key &- 1
      for i in 0..<512 where words[Int(slot) * 512 + i] != 0 {
        result[frame << 12 | UInt64(i) << 3] = words[Int(slot) * 512 + i]
      }
    }
    return result
  }
}
