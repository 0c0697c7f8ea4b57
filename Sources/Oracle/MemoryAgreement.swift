import Machine

/// A word of memory where the target's exported state is not one the architecture allows.
public struct MemoryDisagreement: Hashable, Sendable, CustomStringConvertible {
  /// The host physical address of the word.
  public var hostPhysical: UInt64
  /// The oracle's value.
  public var expected: UInt64
  /// Bits of the oracle's value that may be either way.
  public var uncertain: UInt64
  /// The target's value.
  public var observed: UInt64

  /// One line.
  public var description: String {
    "memory at \(hex(hostPhysical)): the target holds \(hex(observed)), the oracle "
      + "\(hex(expected)) (bits \(hex(uncertain)) either way)"
  }
}

/// Comparing the memory a target exports with the oracle's (docs/fuzzing.md, "memory
/// agreement"): what accesses make visible only through accessed and dirty bits (SEMANTICS
/// §1.8: A set on every entry of a successful walk, D only in the leaf of a write, neither on a
/// faulting walk's leaf) is checked here.
///
/// Every word of every frame the oracle holds must be equal, except: bits the oracle marks
/// uncertain; an accessed bit (bit 5) the target set where the oracle did not (hardware may
/// set A bits speculatively on any walk, §6.1); and the A/D bits of nested tables (bits 8 and 9
/// of EPT entries, 5 and 6 of NPT entries), which no guest observation depends on and which a
/// shadow or paravirtual hypervisor's software walk of its guest-physical map leaves alone.
/// Frames only the target holds (shadow tables) are not compared.
extension Oracle {
  /// The first disagreement between the target's exported memory and the oracle's, or `nil`.
  public func compareMemory(_ exported: MachineState) -> MemoryDisagreement? {
    let theirs = exported.memory.words
    let nestedMask = nestedAccessedDirtyMask
    let nestedTables =
      mode == .paravirtual ? nestedFrames : nestedFrames.union(reachableNestedFrames())
    let shadowFrames = Self.shadowTableFrames(exported)
    // The lowest disagreeing address, whatever order the words are visited in.
    var first: MemoryDisagreement? = nil
    func compare(_ address: UInt64, _ expected: UInt64, _ observed: UInt64) {
      var ignored = uncertain[address]
      if nestedTables.contains(address >> 12) { ignored |= nestedMask }
      let difference = (expected ^ observed) & ~ignored
      let extraAccessed = difference & observed & 1 << 5
      guard difference & ~extraAccessed != 0, address < first?.hostPhysical ?? .max else { return }
      first = MemoryDisagreement(
        hostPhysical: address, expected: expected, uncertain: ignored, observed: observed)
    }
    // Every word the oracle holds, and every word the target holds in a frame the oracle
    // holds a word of or that is a nested table.
    var frames = nestedFrames
    var lastFrame = UInt64.max
    model.state.memory.forEachWord { address, expected in
      let frame = address >> 12
      if frame != lastFrame {
        frames.insert(frame)
        lastFrame = frame
      }
      guard !shadowFrames.contains(frame) else { return }
      compare(address, expected, theirs[address] ?? 0)
    }
    for (address, observed) in theirs where model.state.memory[address] == 0 {
      let frame = address >> 12
      guard frames.contains(frame), !shadowFrames.contains(frame) else { continue }
      compare(address, 0, observed)
    }
    return first
  }

  /// Host frames of the shadow tables an exported state holds (they are the target's own and
  /// may even overlap guest memory in its snapshot), by entry layout from the shadow root.
  private static func shadowTableFrames(_ state: MachineState) -> Set<UInt64> {
    guard let shadow = state.shadow else { return [] }
    let levels = shadow.cr4 & ControlBits.fiveLevel != 0 ? 5 : 4
    var frames: Set<UInt64> = []
    var pending = [(shadow.cr3 >> 12 & 0xFF_FFFF_FFFF, levels)]
    while let (frame, level) = pending.popLast() {
      guard frames.insert(frame).inserted, level > 1 else { continue }
      for index in 0..<UInt64(512) {
        let entry = state.memory[frame << 12 | index << 3]
        if entry & 1 != 0 && !(level <= 3 && entry >> 7 & 1 == 1) {
          pending.append((entry >> 12 & 0xFF_FFFF_FFFF, level - 1))
        }
      }
    }
    return frames
  }

  /// Host frames of the nested tables reachable from the current nested root, by entry layout.
  private func reachableNestedFrames() -> Set<UInt64> {
    let root: UInt64
    let levels: Int
    let ept: Bool
    switch nested {
    case .none: return []
    case .ept(let e):
      root = nestedRoot
      levels = Int(e.eptp >> 3 & 7) + 1
      ept = true
    case .npt(let n):
      root = nestedRoot
      levels = n.hostCR4 & ControlBits.fiveLevel != 0 ? 5 : 4
      ept = false
    }
    var frames: Set<UInt64> = []
    var pending = [(root >> 12, levels)]
    while let (frame, level) = pending.popLast() {
      guard frames.insert(frame).inserted, level > 1 else { continue }
      for index in 0..<UInt64(512) {
        let entry = model.state.memory[frame << 12 | index << 3]
        let present = ept ? entry & 7 != 0 : entry & 1 != 0
        let leaf = level <= 3 && entry >> 7 & 1 == 1
        if present && !leaf {
          pending.append(((entry & EntryMasks.address(bits: nestedAddressBits)) >> 12, level - 1))
        }
      }
    }
    return frames
  }
}
