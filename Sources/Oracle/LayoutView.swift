import Machine

/// The generator's own picture of a machine's layout: the start state's memory with every
/// store the generator made applied, walked by entry layout alone (present bits, bit 7, address
/// fields) to find where the entries of a linear or guest-physical address live.
///
/// It decides nothing about outcomes — that is the oracle's — and depends on no observation,
/// so that a seed gives the same trace whatever the target answers.
struct LayoutView {
  /// One entry on a path: its level, its addresses in each dimension, its value.
  struct Step {
    var level: Int
    var guestPhysical: UInt64
    var hostPhysical: UInt64
    var value: UInt64
  }

  private(set) var memory: [UInt64: UInt64]
  var guestRoot: UInt64
  var guestLevels: Int
  let nested: NestedPaging
  /// Bits M-1:12 of a guest entry; an entry with bits above them set leads nowhere.
  let guestAddressMask: UInt64
  private static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
  /// Guest tables above 4 GiB lead nowhere the generator stores into: the start states keep
  /// every frame below it (and a shadow MMU may keep its own tables high in the same space).
  private static let limit: UInt64 = 1 << 32

  init(_ state: MachineState) {
    memory = state.memory.words
    guestRoot = state.guest.cr3 & Self.addressMask
    let g = state.guest
    guestLevels = g.cr0 >> 31 & 1 == 0 ? 0 : (g.cr4 >> 12 & 1 == 1 ? 5 : 4)
    nested = state.nested
    guestAddressMask = Self.addressMask & (1 << UInt64(state.processor.physicalAddressBits) - 1)
  }

  func read(_ hostPhysical: UInt64) -> UInt64 { memory[hostPhysical] ?? 0 }

  mutating func write(_ hostPhysical: UInt64, _ value: UInt64) {
    memory[hostPhysical] = value == 0 ? nil : value
  }

  /// The nested levels and root, or `nil` without nested paging.
  var nestedRoot: (root: UInt64, levels: Int, ept: Bool)? {
    switch nested {
    case .none: nil
    case .ept(let e): (e.eptp & Self.addressMask & ((1 << 52) - 1), Int(e.eptp >> 3 & 7) + 1, true)
    case .npt(let n): (n.nCR3 & Self.addressMask, n.hostCR4 >> 12 & 1 == 1 ? 5 : 4, false)
    }
  }

  /// The nested entries that map `gpa`, top-down, stopping at a not-present entry or a leaf.
  func nestedPath(_ gpa: UInt64) -> [Step] {
    guard let (root, levels, ept) = nestedRoot else { return [] }
    var steps: [Step] = []
    var table = root
    for level in stride(from: levels, through: 1, by: -1) {
      let address = table | (gpa >> UInt64(12 + 9 * (level - 1)) & 0x1FF) << 3
      let value = read(address)
      steps.append(Step(level: level, guestPhysical: gpa, hostPhysical: address, value: value))
      let present = ept ? value & 7 != 0 : value & 1 != 0
      guard present, !Self.isLeaf(value, level) else { break }
      table = value & Self.addressMask
    }
    return steps
  }

  /// Where `gpa` lives in host memory, by the nested entries' layout alone.
  func hostAddress(_ gpa: UInt64) -> UInt64? {
    guard nestedRoot != nil else { return gpa }
    guard let last = nestedPath(gpa).last else { return nil }
    let ept = nestedRoot?.ept ?? false
    let present = ept ? last.value & 7 != 0 : last.value & 1 != 0
    guard present, Self.isLeaf(last.value, last.level) else { return nil }
    let size: UInt64 = 1 << UInt64(12 + 9 * (last.level - 1))
    return last.value & Self.addressMask & ~(size - 1) | gpa & (size - 1)
  }

  /// The guest entries that translate `linear`, top-down, stopping at a not-present entry, a
  /// leaf, or an entry whose table no host memory backs.
  func guestPath(_ linear: UInt64) -> [Step] {
    guard guestLevels > 0 else { return [] }
    var steps: [Step] = []
    var table = guestRoot
    for level in stride(from: guestLevels, through: 1, by: -1) {
      let gpa = table | (linear >> UInt64(12 + 9 * (level - 1)) & 0x1FF) << 3
      guard let hpa = hostAddress(gpa) else { break }
      let value = read(hpa)
      steps.append(Step(level: level, guestPhysical: gpa, hostPhysical: hpa, value: value))
      guard value & 1 != 0, !Self.isLeaf(value, level),
        value & Self.addressMask & ~guestAddressMask == 0, value & Self.addressMask < Self.limit
      else { break }
      table = value & guestAddressMask
    }
    return steps
  }

  static func isLeaf(_ value: UInt64, _ level: Int) -> Bool {
    level == 1 || (level <= 3 && value >> 7 & 1 == 1)
  }
}
