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
  /// `a << bits`.
  @inline(__always) public func shiftLeft(_ a: UInt64, _ bits: Int) -> UInt64 {
    a << UInt64(bits)
  }
  /// `a >> bits` (logical: `UInt64` is unsigned).
  @inline(__always) public func shiftRight(_ a: UInt64, _ bits: Int) -> UInt64 {
    a >> UInt64(bits)
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

/// Host physical memory for the concrete interpretation: 4-KiB pages in one flat array,
/// found through a dense frame index for low memory and a dictionary above it.
///
/// ENGINEERING-NOTES: dictionary lookups dominate a walk over a dictionary memory; a flat
/// page-frame array is much faster. Page slot 0 is a page of zeros that every absent frame
/// reads from.
public struct FrameMemory: Sendable {
  private var words: [UInt64]
  private var dense: [Int32]
  private var sparse: [UInt64: Int32]

  /// Frames below this number are found through the dense index (16 GiB of address space).
  static let denseFrameLimit: UInt64 = 1 << 22

  /// Copies a snapshot's memory.
  public init(_ memory: PhysicalMemory) {
    words = [UInt64](repeating: 0, count: 512)
    sparse = [:]
    let frames = memory.populatedFrames
    let highestDense = frames.last(where: { $0 < Self.denseFrameLimit }).map { Int($0) + 1 } ?? 0
    dense = [Int32](repeating: 0, count: highestDense)
    for (address, value) in memory.words {
      let slot = self.slot(creating: address >> 12)
      words[slot * 512 + Int((address & 0xFFF) >> 3)] = value
    }
  }

  @inline(__always)
  private func slot(of frame: UInt64) -> Int {
    if frame < UInt64(dense.count) { return Int(dense[Int(frame)]) }
    return Int(sparse[frame] ?? 0)
  }

  private mutating func slot(creating frame: UInt64) -> Int {
    let existing = slot(of: frame)
    if existing != 0 { return existing }
    let fresh = words.count / 512
    words.append(contentsOf: repeatElement(0, count: 512))
    if frame < Self.denseFrameLimit {
      if frame >= UInt64(dense.count) {
        dense.append(contentsOf: repeatElement(0, count: Int(frame) + 1 - dense.count))
      }
      dense[Int(frame)] = Int32(fresh)
    } else {
      sparse[frame] = Int32(fresh)
    }
    return fresh
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

  /// The contents as a sparse snapshot memory.
  public var snapshot: PhysicalMemory {
    var result = PhysicalMemory()
    func copy(frame: UInt64, slot: Int) {
      for i in 0..<512 where words[slot * 512 + i] != 0 {
        result[frame << 12 | UInt64(i) << 3] = words[slot * 512 + i]
      }
    }
    for (frame, slot) in dense.enumerated() where slot != 0 {
      copy(frame: UInt64(frame), slot: Int(slot))
    }
    for (frame, slot) in sparse { copy(frame: frame, slot: Int(slot)) }
    return result
  }
}
