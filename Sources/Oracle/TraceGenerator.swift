import Machine
import Workloads

/// The operation generator (issue 5, item 3): a weighted mix (``OperationMix``) with values
/// biased toward what breaks MMUs — present/absent and permission flips at each level of both
/// dimensions, large-page bits and boundaries, retargets that alias tables or make them map
/// themselves, reserved bits and EPT misconfigurations, host changes with and without INVEPT,
/// control toggles, paravirtual batches — and often the original value restored, so that the
/// machine keeps translating.
///
/// Deterministic: the same machine, mode, seed and mix give the same operations, whatever the
/// target answers (the generator reads only its own ``LayoutView``).
public struct TraceGenerator {
  /// The mode whose vocabulary the operations are drawn for.
  public let mode: OracleMode
  /// The weights.
  public var mix: OperationMix
  let machine: FuzzMachine
  var view: LayoutView
  var random: SeededGenerator
  /// Operations decided but not yet handed out (a flush after a store).
  var pending: [TraceOperation] = []
  /// The first value the generator saw at each entry it changed, by host address.
  var originals: [UInt64: UInt64] = [:]
  /// Linear addresses whose entries were changed lately: INVLPG and accesses favour them.
  var recent: [UInt64] = []
  /// Linear addresses accessed lately: entry changes and accesses favour them, so that a
  /// change meets a cached translation and a later access meets the change.
  var touched: [UInt64] = []
  var registers: GuestRegisters
  var nested: NestedPaging
  var vpid: UInt64 = 1

  /// A generator for episodes starting from `machine`.
  public init(machine: FuzzMachine, mode: OracleMode, seed: UInt64, mix: OperationMix? = nil) {
    self.mode = mode
    self.mix = mix ?? .standard(mode)
    self.machine = machine
    view = LayoutView(machine.state)
    random = SeededGenerator(seed: seed ^ 0x6E65_7374_6368_6B21)
    registers = machine.state.guest
    nested = machine.state.nested
  }

  mutating func chance(_ percent: UInt64) -> Bool {
    UInt64.random(in: 0..<100, using: &random) < percent
  }

  mutating func pick<T>(_ items: [T]) -> T {
    items[Int.random(in: 0..<items.count, using: &random)]
  }

  /// Whether operations already decided (the rest of a probe, a flush after a store) come
  /// next.
  public var hasPending: Bool { !pending.isEmpty }

  /// The next operation.
  public mutating func next() -> TraceOperation {
    if !pending.isEmpty { return pending.removeFirst() }
    for _ in 0..<8 {
      if let operation = draw(mix.draw(using: &random)) { return operation }
    }
    return access()
  }

  private mutating func draw(_ kind: OperationClass) -> TraceOperation? {
    switch kind {
    case .access: return access()
    case .guestEntryWrite: return guestEntryWrite()
    case .guestDataWrite:
      let frame = pick(machine.dataFrames)
      return store(
        guestPhysical: frame | UInt64.random(in: 0..<512, using: &random) << 3,
        value: random.next())
    case .nestedEntryWrite: return nestedEntryWrite()
    case .hostGuestWrite:
      guard view.guestLevels > 0, let step = pickGuestStep() else { return nil }
      let value = mutateGuest(step)
      view.write(step.hostPhysical, value)
      return .writeHost(hostPhysical: step.hostPhysical, value: value)
    case .controlToggle: return controlToggle()
    case .cr3Write: return cr3Write()
    case .invlpg:
      return .invlpg(linearAddress: chance(60) && !recent.isEmpty ? pick(recent) : linear())
    case .invpcid:
      let type = pick(InvpcidType.allCases)
      let pcidEnabled = registers.cr4 >> 17 & 1 == 1
      let pcid =
        pcidEnabled
        ? (chance(70) ? registers.cr3 & 0xFFF : UInt64.random(in: 0..<4, using: &random)) : 0
      return .invpcid(type, pcid: pcid, linearAddress: canonical(linear()))
    case .invept:
      return invept()
    case .invvpid:
      let type = pick(InvvpidType.allCases)
      let target = chance(70) ? max(vpid, 1) : UInt64.random(in: 1..<4, using: &random)
      return .invvpid(type, vpid: target, linearAddress: canonical(linear()))
    case .vpidWrite:
      guard mode != .paravirtual || chance(10) else { return nil }
      vpid = UInt64.random(in: 0..<4, using: &random)
      return .writeRegister(.vpid, value: vpid)
    case .nestedRootWrite:
      switch nested {
      case .ept(var ept):
        if chance(50) { ept.eptp ^= 1 << 6 }
        nested = .ept(ept)
        return .writeRegister(.nestedRoot, value: ept.eptp)
      case .npt(let npt):
        return .writeRegister(.nestedRoot, value: npt.nCR3)
      case .none:
        return chance(10) ? .writeRegister(.nestedRoot, value: 0x1000) : nil
      }
    case .batch:
      return batch()
    case .revisit:
      return revisit()
    case .aliasRevisit:
      return aliasRevisit()
    case .writeProtectWindow:
      return writeProtectWindow()
    }
  }

  // MARK: - Stale-translation probes

  /// An access now, a change to what it used, a flush that covers the change or none, and the
  /// same access again (``OperationClass/revisit``): the shape of every TLB, INVLPG, INVEPT,
  /// PCID and shadow-resynchronisation bug (SEMANTICS §5.9, §6).
  private mutating func revisit() -> TraceOperation? {
    let first = access()
    guard case .access(let address, let kind) = first else { return first }
    var middle: [TraceOperation] = []
    let roll = UInt64.random(in: 0..<10, using: &random)
    let path = view.guestPath(address)
    if roll < 5, !path.isEmpty {
      let step = chance(50) ? path[path.count - 1] : pick(path)
      let value = mutateGuest(step)
      view.write(step.hostPhysical, value)
      middle.append(
        mode == .paravirtual
          ? .paravirtualBatch([PageTableUpdate(entry: step.guestPhysical, value: value)])
          : .writeGuest(guestPhysical: step.guestPhysical, value: value))
      switch UInt64.random(in: 0..<6, using: &random) {
      case 0, 1: middle.append(.invlpg(linearAddress: address))
      case 2: if let reload = cr3Write() { middle.append(reload) }
      case 3:
        registers.cr4 ^= 1 << 7  // PGE: flushes everything, globals too
        middle.append(.writeRegister(.cr4, value: registers.cr4))
      default: break
      }
    } else if roll < 8, view.nestedRoot != nil, let frame = touchedFrame(of: address),
      case let nestedPath = view.nestedPath(frame), !nestedPath.isEmpty
    {
      let step = chance(50) ? nestedPath[nestedPath.count - 1] : pick(nestedPath)
      let value = mutateNested(step)
      view.write(step.hostPhysical, value)
      middle.append(.writeHost(hostPhysical: step.hostPhysical, value: value))
      if chance(60) { middle.append(invept(singleContext: chance(60))) }
    } else if let toggle = controlToggle() {
      middle.append(toggle)
    }
    pending += middle + [.access(linearAddress: address, kind)]
    return first
  }

  // MARK: - Accesses

  /// An interesting linear address: often one accessed or changed lately (locality: what a
  /// TLB holds, and what a change made stale); otherwise a page start, or an offset near its
  /// end, within it, or just past it.
  mutating func linear() -> UInt64 {
    let lately = touched + recent
    if !lately.isEmpty && chance(40) { return pick(lately) }
    let index = Int.random(in: 0..<machine.addresses.count, using: &random)
    let base = machine.addresses[index]
    let size = max(machine.pageSizes[index], 0x1000)
    switch UInt64.random(in: 0..<10, using: &random) {
    case 0..<4: return base
    case 4..<7: return base &+ UInt64.random(in: 0..<min(size, 0x4000) / 8, using: &random) * 8
    case 7: return base &+ size - 8
    case 8: return base &+ size
    default: return base &+ UInt64.random(in: 0..<size / 0x1000, using: &random) << 12
    }
  }

  func canonical(_ address: UInt64) -> UInt64 {
    let shift: UInt64 = view.guestLevels == 5 ? 7 : 16
    return UInt64(bitPattern: Int64(bitPattern: address << shift) >> shift)
  }

  mutating func access() -> TraceOperation {
    let kind: AccessKind = pick([.read, .read, .write, .write, .fetch])
    let mode = UInt64.random(in: 0..<10, using: &random)
    let access = Access(kind, user: mode < 4, implicit: mode >= 8 && kind != .fetch)
    let address = linear()
    touched.append(address)
    if touched.count > 6 { touched.removeFirst() }
    return .access(linearAddress: address, access)
  }

  // MARK: - Guest entries

  private mutating func pickGuestStep() -> LayoutView.Step? {
    for _ in 0..<4 {
      let address = !touched.isEmpty && chance(50) ? pick(touched) : pick(machine.addresses)
      let path = view.guestPath(address)
      guard !path.isEmpty else { continue }
      recent.append(address)
      if recent.count > 8 { recent.removeFirst() }
      return chance(40) ? path[path.count - 1] : pick(path)
    }
    return nil
  }

  private mutating func guestEntryWrite() -> TraceOperation? {
    guard view.guestLevels > 0, let step = pickGuestStep() else { return guestDataFallback() }
    let value = mutateGuest(step)
    view.write(step.hostPhysical, value)
    if chance(40), let address = recent.last { pending.append(.invlpg(linearAddress: address)) }
    return .writeGuest(guestPhysical: step.guestPhysical, value: value)
  }

  private mutating func guestDataFallback() -> TraceOperation? {
    guard let frame = machine.dataFrames.first else { return nil }
    return store(guestPhysical: frame, value: random.next())
  }

  private mutating func store(guestPhysical: UInt64, value: UInt64) -> TraceOperation {
    if let host = view.hostAddress(guestPhysical) { view.write(host, value) }
    return .writeGuest(guestPhysical: guestPhysical, value: value)
  }

  /// A biased change of a guest (x86) entry.
  mutating func mutateGuest(_ step: LayoutView.Step) -> UInt64 {
    let value = step.value
    let original = originals[step.hostPhysical] ?? value
    originals[step.hostPhysical] = original
    let roll = UInt64.random(in: 0..<100, using: &random)
    switch roll {
    case 0..<14: return value ^ 1  // P
    case 14..<26: return value ^ 1 << 1  // R/W
    case 26..<37: return value ^ 1 << 2  // U/S
    case 37..<44: return value ^ 1 << 63  // XD
    case 44..<49: return value ^ 1 << 7  // PS (reserved at levels 4 and 5)
    case 49..<52: return value ^ 1 << 8  // G
    case 52..<57: return value ^ (chance(50) ? 1 << 5 : 1 << 6)  // A, D
    case 57..<60: return value & ~(0xF << 59) | UInt64.random(in: 0..<16, using: &random) << 59
    // Reserved bits; bit 8 of a PML4E or PML5E is reserved on AMD only (SEMANTICS §1.3).
    case 60..<63:
      if step.level >= 4 && chance(50) { return value | 1 << 8 }
      return value | pick([1 << 51, 1 << 13, 1 << 45, 1 << 38] as [UInt64])
    case 63..<75: return retargetGuest(value, level: step.level)
    case 75..<79: return 0
    default: return original
    }
  }

  private mutating func retargetGuest(_ value: UInt64, level: Int) -> UInt64 {
    let frames = machine.guestTables + machine.dataFrames + [machine.unbackedFrame, 0x40_0000]
    let frame = pick(frames)
    let bits = value & ~0x000F_FFFF_FFFF_F000 | (value & 1 == 0 ? 0x27 : 0)
    return bits | frame
  }

  // MARK: - Nested entries

  private mutating func nestedEntryWrite() -> TraceOperation? {
    guard view.nestedRoot != nil else { return nil }
    let targets = machine.guestTables + machine.dataFrames + [0x40_0000, 0x4000_0000]
    let path = view.nestedPath(chance(50) ? touchedFrame() ?? pick(targets) : pick(targets))
    guard !path.isEmpty else { return nil }
    let step = chance(50) ? path[path.count - 1] : pick(path)
    let value = mutateNested(step)
    view.write(step.hostPhysical, value)
    if chance(45) { pending.append(invept(singleContext: chance(70))) }
    return .writeHost(hostPhysical: step.hostPhysical, value: value)
  }

  private mutating func mutateNested(_ step: LayoutView.Step) -> UInt64 {
    let value = step.value
    let original = originals[step.hostPhysical] ?? value
    originals[step.hostPhysical] = original
    let ept = view.nestedRoot?.ept ?? false
    let roll = UInt64.random(in: 0..<100, using: &random)
    if ept {
      switch roll {
      case 0..<10: return Self.withoutLoneXU(value ^ 1)  // R
      case 10..<20: return Self.withoutLoneXU(value ^ 2)  // W
      case 20..<28: return Self.withoutLoneXU(value ^ 4)  // X
      // Misconfigurations; an entry made not present loses XU too (an XU-only entry under
      // mode-based execute control is a corner the model does not cover yet: docs/fuzzing.md).
      case 28..<33:
        let xwr: UInt64 = pick([2, 6, 4, 0])
        return value & ~7 & ~(xwr == 0 ? 1 << 10 : 0) | xwr
      case 33..<36: return value & 7 == 0 ? value & ~(1 << 10) : value ^ 1 << 10  // XU
      case 36..<40: return value ^ 1 << 7  // large page
      case 40..<43: return value & ~0x38 | pick([2, 3, 7, 0, 6] as [UInt64]) << 3  // memory type
      case 43..<46: return value | pick([1 << 51, 1 << 47, 1 << 13] as [UInt64])
      case 46..<49: return value & ~0x300
      case 49..<55: return retargetNested(value)
      case 55..<60: return 0
      default: return original
      }
    }
    switch roll {
    case 0..<12: return value ^ 1  // P
    case 12..<24: return value ^ 2  // R/W
    case 24..<34: return value ^ 4  // U/S
    case 34..<40: return value ^ 1 << 63  // XD
    case 40..<44: return value ^ 1 << 7  // PS
    case 44..<47: return value | pick([1 << 51, 1 << 8, 1 << 13] as [UInt64])
    case 47..<53: return retargetNested(value)
    case 53..<58: return 0
    default: return original
    }
  }

  /// A guest-physical frame on the path of an address accessed lately: one of the guest tables
  /// it is walked through, or the page it reaches.
  private mutating func touchedFrame() -> UInt64? {
    guard !touched.isEmpty else { return nil }
    return touchedFrame(of: pick(touched))
  }

  /// A guest-physical frame on the path of `address`: a guest table or the page.
  private mutating func touchedFrame(of address: UInt64) -> UInt64? {
    let path = view.guestPath(address)
    guard let step = path.isEmpty ? nil : pick(path) else { return nil }
    guard step.value & 1 != 0, LayoutView.isLeaf(step.value, step.level) else {
      return step.guestPhysical & ~0xFFF
    }
    let size: UInt64 = 1 << UInt64(12 + 9 * (step.level - 1))
    return step.value & 0x000F_FFFF_FFFF_F000 & ~(size - 1) | address & (size - 1) & ~0xFFF
  }

  /// An EPT entry with R = W = X = 0 loses XU as well.
  private static func withoutLoneXU(_ value: UInt64) -> UInt64 {
    value & 7 == 0 ? value & ~(1 << 10) : value
  }

  private mutating func retargetNested(_ value: UInt64) -> UInt64 {
    let frames = (machine.guestTables + machine.dataFrames).map { $0 + FuzzMachine.hostOffset }
    return value & ~0x000F_FFFF_FFFF_F000 | pick(frames)
  }

  private mutating func invept(singleContext: Bool? = nil) -> TraceOperation {
    let single = singleContext ?? chance(60)
    switch nested {
    case .ept(let ept):
      return .invept(single ? .singleContext : .allContexts, eptp: ept.eptp)
    case .npt(let npt):
      return .invept(single ? .singleContext : .allContexts, eptp: npt.nCR3)
    case .none:
      return .invept(.allContexts, eptp: 0)
    }
  }

  // MARK: - Controls

  private mutating func controlToggle() -> TraceOperation? {
    guard view.guestLevels > 0 else {
      return chance(50) ? .writeRegister(.rflags, value: registers.rflags ^ 1 << 18) : nil
    }
    // CR0.WP and RFLAGS.AC most often, then the CR4 bits: WP is the toggle whose rules
    // implementations have cached wrongly (SEMANTICS §1.9, §5.9).
    switch UInt64.random(in: 0..<14, using: &random) {
    case 0, 1, 2:
      registers.cr0 ^= 1 << 16
      return .writeRegister(.cr0, value: registers.cr0)
    case 3, 4, 5, 6, 7:
      let bit: UInt64 = pick([20, 21, 7, 22, 24])
      registers.cr4 ^= 1 << bit
      return .writeRegister(.cr4, value: registers.cr4)
    case 8:
      guard registers.cr3 & 0xFFF == 0 else { return nil }
      registers.cr4 ^= 1 << 17
      return .writeRegister(.cr4, value: registers.cr4)
    case 9:
      registers.efer ^= 1 << 11
      return .writeRegister(.efer, value: registers.efer)
    case 10, 11:
      registers.rflags ^= 1 << 18
      return .writeRegister(.rflags, value: registers.rflags)
    case 12:
      registers.pkru = chance(50) ? 0 : UInt64.random(in: 0...0xFFFF_FFFF, using: &random)
      return .writeRegister(.pkru, value: registers.pkru)
    default:
      registers.pkrs = chance(50) ? 0 : UInt64.random(in: 0...0xFFFF_FFFF, using: &random)
      return .writeRegister(.pkrs, value: registers.pkrs)
    }
  }

  private mutating func cr3Write() -> TraceOperation? {
    guard view.guestLevels > 0 else { return nil }
    let root = registers.cr3 & ~0xFFF
    if registers.cr4 >> 17 & 1 == 1 {
      let pcid = chance(40) ? registers.cr3 & 0xFFF : UInt64.random(in: 0..<4, using: &random)
      registers.cr3 = root | pcid
      return .writeRegister(.cr3, value: root | pcid | (chance(35) ? 1 << 63 : 0))
    }
    registers.cr3 = root
    return .writeRegister(.cr3, value: root)
  }

  // MARK: - Paravirtual batches

  private mutating func batch() -> TraceOperation? {
    guard view.guestLevels > 0 else { return nil }
    var updates: [PageTableUpdate] = []
    for _ in 0..<Int.random(in: 1...4, using: &random) {
      guard let step = pickGuestStep() else { break }
      let value = mutateGuest(step)
      view.write(step.hostPhysical, value)
      updates.append(
        PageTableUpdate(
          entry: step.guestPhysical, value: value, preserveAccessedDirty: chance(30)))
    }
    guard !updates.isEmpty else { return nil }
    if chance(30), let address = recent.last { pending.append(.invlpg(linearAddress: address)) }
    return .paravirtualBatch(updates)
  }
}
