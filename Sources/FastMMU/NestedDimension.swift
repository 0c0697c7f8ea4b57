import Machine

/// The second dimension of translation, decoded from a snapshot: none, EPT or NPT. The nested
/// MMU's hardware walks it; the shadow and paravirtual MMUs read it in software as the
/// hypervisor's guest-physical map (P2M).
enum NestedDimension {
  case none
  case ept(EPTPointer, EPTFormat)
  case npt(NPTConfiguration)

  /// Decodes the snapshot's nested configuration.
  init(_ nested: NestedPaging) throws(MMUSetupError) {
    switch nested {
    case .none: self = .none
    case .ept(let ept):
      guard let pointer = EPTPointer(ept.eptp, addressBits: ept.physicalAddressBits) else {
        throw MMUSetupError("the EPTP \(hex(ept.eptp)) would fail VM entry")
      }
      self = .ept(pointer, EPTFormat(ept))
    case .npt(let npt):
      guard let configuration = NPTConfiguration(npt) else {
        throw MMUSetupError("NPT with a non-PAE host paging mode is outside scope")
      }
      self = .npt(configuration)
    }
  }

  /// No nested dimension: guest-physical addresses are host physical addresses.
  var isIdentity: Bool {
    if case .none = self { return true }
    return false
  }

  var isEPT: Bool {
    if case .ept = self { return true }
    return false
  }

  var isNPT: Bool {
    if case .npt = self { return true }
    return false
  }

  /// The root that tags cached mappings: the EP4TA or N_CR3; 0 without nesting.
  var root: UInt64 {
    switch self {
    case .none: 0
    case .ept(let pointer, _): pointer.root
    case .npt(let configuration): configuration.root
    }
  }

  /// The host physical address backing `gpa`, whatever the nested rights: how a hypervisor
  /// finds the page behind a guest-physical address. `nil` when no present, well-formed leaf
  /// maps it.
  func backing(_ gpa: UInt64, _ memory: MemoryView) -> UInt64? {
    var level: Int
    var table: UInt64
    switch self {
    case .none: return gpa
    case .ept(let pointer, _):
      level = pointer.levels
      table = pointer.root
    case .npt(let configuration):
      level = configuration.levels
      table = configuration.root
    }
    while true {
      let entry = memory.load(table | X86Entry.index(gpa, level: level) << 3)
      let leaf = X86Entry.isLeaf(entry, level: level)
      guard isUsable(entry, level: level, leaf: leaf) else { return nil }
      if leaf { return X86Entry.translate(entry, level: level, gpa) }
      table = entry & X86Entry.addressMask
      level -= 1
    }
  }

  private func isUsable(_ entry: UInt64, level: Int, leaf: Bool) -> Bool {
    switch self {
    case .none: return true
    case .ept(_, let format):
      return format.isPresent(entry) && !format.isMisconfigured(entry, level: level, leaf: leaf)
    case .npt(let configuration):
      return entry & X86Entry.present != 0
        && entry & configuration.reserved.mask(level: level, leaf: leaf) == 0
    }
  }

  /// The frames of every nested table reachable from the root: a hypervisor write to one of
  /// them changes the guest-physical map.
  func tableFrames(_ memory: MemoryView) -> Set<UInt64> {
    let top: Int
    switch self {
    case .none: return []
    case .ept(let pointer, _): top = pointer.levels
    case .npt(let configuration): top = configuration.levels
    }
    var frames: Set<UInt64> = []
    var pending = [(root >> 12, top)]
    while let (frame, level) = pending.popLast() {
      guard frames.insert(frame).inserted, level > 1 else { continue }
      for index in 0..<UInt64(512) {
        let entry = memory.load(frame << 12 | index << 3)
        let leaf = X86Entry.isLeaf(entry, level: level)
        if !leaf && isUsable(entry, level: level, leaf: false) {
          pending.append(((entry & X86Entry.addressMask) >> 12, level - 1))
        }
      }
    }
    return frames
  }
}
