import Machine
import Oracle

/// What the fuzzer's generator is told about a spec's state: the linear addresses worth
/// accessing (the guest mappings' pages, and a hole), the guest's tables, the frames its
/// mappings use, and a frame the nested dimension leaves unbacked. The generator reads the
/// entries themselves from the state; these lists only aim it.
enum FuzzLayout {
  /// Pages of one mapping offered to the generator, at most.
  static let pagesPerMapping: UInt64 = 8

  /// A fuzz machine whose state is `built`'s and whose layout is the spec's. The generated
  /// machine of `mode` and `seed` supplies any list the spec leaves empty (a guest with paging
  /// off and no mappings), so that the generator always has something to aim at.
  static func machine(for built: BuiltSpec, mode: OracleMode, seed: UInt64) -> FuzzMachine {
    var machine = FuzzMachine(mode: mode, seed: seed)
    let spec = built.spec
    var addresses: [UInt64] = []
    var sizes: [UInt64] = []
    var frames: [UInt64] = []
    for mapping in spec.guestMappings {
      let page = mapping.page.rawValue
      let pages = min(max(mapping.size / page, 1), pagesPerMapping)
      for index in 0..<pages {
        addresses.append(mapping.gva &+ index * page)
        sizes.append(page)
        frames.append(mapping.gpa &+ index * page)
      }
    }
    if let hole = hole(after: spec.guestMappings) {
      addresses.append(hole)
      sizes.append(0)
    }
    if !addresses.isEmpty {
      machine.addresses = addresses
      machine.pageSizes = sizes
    }
    if !frames.isEmpty { machine.dataFrames = frames }
    let tables = built.layout.guestTables.map(\.guestPhysical)
    if !tables.isEmpty { machine.guestTables = tables }
    if let end = spec.hostMappings.map({ $0.gpa &+ $0.size }).max(), end < 1 << 40 {
      machine.unbackedFrame = (end + 0xFFF) & ~0xFFF
    }
    machine.state = built.state
    return machine
  }

  /// The page after the first mapping that no mapping covers: a linear address whose walk
  /// faults, when the spec has one near its mappings.
  static func hole(after mappings: [GuestMapping]) -> UInt64? {
    for mapping in mappings {
      let candidate = mapping.gva &+ mapping.size
      guard canonical(candidate), candidate > mapping.gva else { continue }
      let covered = mappings.contains {
        candidate >= $0.gva && candidate - $0.gva < $0.size
      }
      if !covered { return candidate }
    }
    return nil
  }

  /// Whether `address` is canonical for 4-level paging (bits 63:47 all equal); 5-level
  /// addresses that are not are simply not offered as holes.
  static func canonical(_ address: UInt64) -> Bool {
    let top = address >> 47
    return top == 0 || top == 0x1_FFFF
  }
}
