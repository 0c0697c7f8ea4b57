import Machine

/// Shadow paging (issue 4, part 2; SEMANTICS §5.1–5.5): the hypervisor keeps tables of
/// guest-virtual to host-physical translations that the hardware walks, built on demand from
/// the guest's tables and the guest-physical map (P2M), which the hypervisor reads in software
/// from the snapshot's EPT or NPT tables.
///
/// Shadow pages are keyed by (guest table frame, role); guest page tables are write-protected
/// through the reverse map; guest writes to them trap and are emulated, or level-1 tables are
/// unsynced and resynced at INVLPG and CR3 writes; hypervisor-induced faults fill the shadow;
/// guest-induced faults are re-injected with the guest walk's error code; a clean page is
/// mapped read-only until the guest's D flag is set.
///
/// The hardware runs with CR0.WP = 1 and EFER.NXE = 1, as KVM forces them, and intercepts
/// `#PF`, `INVLPG`, `INVPCID` and control-register writes. An access whose guest-physical
/// address the P2M does not map is reported as nested paging would report it (an EPT
/// violation or `#NPF`), so every mode answers one trace in one vocabulary.
public final class ShadowMMU: VirtualMMU {
  /// The choices this MMU was made with.
  public let configuration: MMUConfiguration
  let processor: Processor
  /// Guest memory and the P2M's tables.
  let memory: HostMemory
  /// The shadow tables, in host frames from ``MMUConfiguration/shadowTableBase`` up.
  let shadowMemory: HostMemory
  var registers: GuestRegisters
  var guest: PagingControl
  var guestPermissions: PermissionMap
  /// The controls the hardware walks the shadow tables with, raw and decoded.
  var hardwareRegisters: GuestRegisters
  var hardware: PagingControl
  var hardwarePermissions: PermissionMap
  var nestedSnapshot: NestedPaging
  /// The guest-physical map.
  var p2m: NestedDimension
  /// Host frames of the P2M's tables: a write to one changes the map.
  var p2mTableFrames: Set<UInt64> = []
  /// The host physical address-width of the shadow entries.
  let hostAddressBits: Int
  var pages = ShadowPageTable()
  var reverseMap = ReverseMap()
  /// Host frame → guest frame, for every shadowed guest table.
  var backingFrames: [UInt64: UInt64] = [:]
  private var nextShadowFrame: UInt64
  private var freeShadowFrames: [UInt64] = []
  /// The current shadow root, made on first use.
  var root: Int?
  var vpid: UInt64
  let tlb: TranslationBuffer
  /// The TLB's control block, read by the inlined hit path.
  @usableFromInline let tlbControl: UnsafeMutablePointer<TLBControl>
  let tlbEnabled: Bool
  let contexts = TaggingContexts()
  var context: UInt32 = 0
  let hardwareScratch = WalkScratch()
  let softwareScratch = WalkScratch()
  var exits = ExitRecorder()
  var counters = MMUStatistics()

  /// Makes the MMU over a snapshot; the snapshot's nested tables become the P2M.
  public init(_ state: MachineState, configuration: MMUConfiguration = MMUConfiguration())
    throws(MMUSetupError)
  {
    guard
      let guest = PagingControl(
        state.guest, processor: state.processor, configuration: configuration)
    else {
      throw MMUSetupError("the guest's paging mode (32-bit or PAE paging) is outside scope")
    }
    self.configuration = configuration
    processor = state.processor
    memory = HostMemory.make(state.memory)
    registers = state.guest
    self.guest = guest
    guestPermissions = PermissionMap(guest)
    nestedSnapshot = state.nested
    p2m = try NestedDimension(state.nested)
    switch state.nested {
    case .none: hostAddressBits = state.processor.physicalAddressBits
    case .ept(let ept): hostAddressBits = ept.physicalAddressBits
    case .npt(let npt): hostAddressBits = npt.physicalAddressBits
    }
    let base = (configuration.shadowTableBase ?? 1 << UInt64(hostAddressBits - 1)) >> 12
    shadowMemory = HostMemory.make(base: base)
    nextShadowFrame = base
    vpid = configuration.initialVPID
    tlbEnabled = configuration.tlbEntries > 0
    tlb = Recycler.shared.translationBuffer(capacity: max(1, configuration.tlbEntries))
    tlbControl = tlb.control
    hardware = guest
    hardwareRegisters = state.guest
    hardwarePermissions = guestPermissions
    p2mTableFrames = p2m.tableFrames(memory.view)
    controlsChanged()
  }

  /// Leaves the TLB and both memories to the ``Recycler``, emptied.
  deinit {
    let recycler = Recycler.shared
    recycler.recycle(tlb)
    recycler.recycle(memory)
    recycler.recycle(shadowMemory)
  }

  /// ``MMUMode/shadow``.
  public var mode: MMUMode { .shadow }

  /// Exits, walks and references so far.
  public var statistics: MMUStatistics {
    var result = counters
    result.exits = exits.counts
    return result
  }

  /// Zeroes the statistics.
  public func resetStatistics() {
    counters = MMUStatistics()
    exits.counts = VMExitCounts()
  }

  /// The number of shadow pages that exist.
  public var shadowPageCount: Int { pages.count }

  /// Translates an access: a TLB hit, else the hardware walk of the shadow tables, and on a
  /// `#PF` the hypervisor's fault handling (SEMANTICS §5.3).
  @inlinable @inline(__always)
  public func translate(_ linearAddress: UInt64, _ access: Access) -> Outcome {
    if let hpa = TranslationBuffer.lookup(tlbControl, linearAddress, access) {
      return .translated(hostPhysical: hpa)
    }
    return miss(linearAddress, access)
  }

  @usableFromInline
  func miss(_ address: UInt64, _ access: Access) -> Outcome {
    let outcome = hardwareWalk(address, access)
    guard case .pageFault = outcome else { return outcome }
    return shadowFault(address, access)
  }

  /// The hardware's walk of the shadow tables (SEMANTICS §1.7 over S), filling the TLB.
  func hardwareWalk(_ address: UInt64, _ access: Access) -> Outcome {
    let rootFrame = rootPage().frame
    if hardware.root != rootFrame << 12 { loadHardwareRoot(rootFrame) }
    var path = hardwareScratch.path
    var references = 0
    var stage = IdentityStage()
    let outcome = GuestWalk.run(
      address, access, control: hardware, permissions: hardwarePermissions, stage: &stage,
      memory: shadowMemory.view, settings: GuestWalk.Settings(), path: &path,
      references: &references)
    counters.walks += 1
    counters.memoryReferences += references
    if case .translated(let hpa) = outcome, tlbEnabled {
      tlb.insert(address, hostPhysical: hpa, path, context: context)
    }
    return outcome
  }

  /// Applies one trace operation.
  public func apply(_ operation: TraceOperation) -> TraceObservation {
    exits.log = []
    let result = perform(operation)
    let observed = exits.log ?? []
    exits.log = nil
    return TraceObservation(result, exits: observed)
  }

  private func perform(_ operation: TraceOperation) -> TraceResult {
    switch operation {
    case .access(let address, let access):
      return .outcome(translate(address, access))
    case .writeGuest(let gpa, let value):
      return writeGuest(gpa, value)
    case .writeHost(let hpa, let value):
      writeHost(hpa, value)
      return .completed
    case .writeRegister(let register, let value):
      return write(register, value)
    case .invlpg(let address):
      exits.record(.invlpg)
      invalidatePage(address)
      return .completed
    case .invpcid(let type, let pcid, let address):
      guard pcid <= 0xFFF else { return .refused(.invalidValue) }
      exits.record(.invpcid)
      if type == .individualAddress { invalidatePage(address) } else { flushGuestTLB() }
      return .completed
    case .invept:
      return .completed
    case .invvpid(let type, let target, _):
      guard target <= 0xFFFF, type == .allContexts || target != 0 else {
        return .refused(.invalidValue)
      }
      tlb.flush()
      return .completed
    case .paravirtualBatch(let updates):
      for (index, update) in updates.enumerated() {
        var value = update.value
        if update.preserveAccessedDirty, let hpa = p2m.backing(update.entry, memory.view) {
          value |= memory.read(hpa) & (X86Entry.accessed | X86Entry.dirty)
        }
        guard case .completed = writeGuest(update.entry, value) else {
          return .batch(status: TraceResult.invalidStatus, applied: index)
        }
      }
      return .batch(status: 0, applied: updates.count)
    }
  }

  /// The machine now: guest memory with its A/D flags, the shadow tables, the guest's
  /// registers, the P2M's nested configuration, and the current shadow root.
  public func snapshot() -> MachineState {
    var combined = memory.snapshot
    for (address, value) in shadowMemory.snapshot.words { combined[address] = value }
    let rootFrame = rootPage().frame
    if hardware.root != rootFrame << 12 { loadHardwareRoot(rootFrame) }
    let unsyncTables = pages.pages.compactMap { $0?.unsync == true ? $0?.key.guestFrame : nil }
    return MachineState(
      processor: processor, guest: registers, nested: nestedSnapshot,
      shadow: ShadowPaging(
        cr3: rootFrame << 12, guest: registers, cr0: hardwareRegisters.cr0,
        cr4: hardwareRegisters.cr4, efer: hardwareRegisters.efer,
        unsyncTables: Array(Set(unsyncTables)).sorted()),
      memory: combined)
  }

  // MARK: - Shadow frames

  /// A zeroed host frame for a new shadow table.
  func allocateShadowFrame() -> UInt64 {
    if let frame = freeShadowFrames.popLast() { return frame }
    defer { nextShadowFrame += 1 }
    return nextShadowFrame
  }

  /// Returns every shadow frame: all shadow pages are gone.
  func releaseAllShadowFrames() {
    for frame in shadowMemory.populatedFrames { shadowMemory.discard(frame: frame) }
    nextShadowFrame = shadowMemory.base
    freeShadowFrames = []
  }

  /// Recomputes what depends on the guest's controls and the VPID: permission maps, the
  /// hardware's controls, the TLB's context.
  func controlsChanged() {
    guestPermissions = PermissionMap(guest)
    root = nil
    let rootFrame = rootPage().frame
    loadHardwareRoot(rootFrame)
  }

  /// The hardware's controls for walking the shadow root in `rootFrame`: CR0.WP = 1 and
  /// EFER.NXE = 1 (KVM forces both while shadowing), the guest's SMEP, SMAP, keys, AC and
  /// paging depth.
  func loadHardwareRoot(_ rootFrame: UInt64) {
    let keep =
      ControlBit.cr4FiveLevel | ControlBit.cr4SupervisorExecuteProtection
      | ControlBit.cr4SupervisorAccessProtection | ControlBit.cr4ProtectionKeys
      | ControlBit.cr4SupervisorProtectionKeys
    let registers = GuestRegisters(
      cr0: ControlBit.cr0Paging | ControlBit.cr0WriteProtect | 1,
      cr3: rootFrame << 12,
      cr4: (guest.paging ? self.registers.cr4 & keep : 0) | ControlBit.cr4PhysicalAddressExtension,
      efer: ControlBit.eferLongModeActive | ControlBit.eferExecuteDisable | 1 << 8,
      rflags: self.registers.rflags, pkru: self.registers.pkru, pkrs: self.registers.pkrs)
    let host = Processor(
      vendor: processor.vendor, physicalAddressBits: hostAddressBits, gigabytePages: true)
    guard let control = PagingControl(registers, processor: host) else {
      preconditionFailure("the shadow hardware mode is always 4- or 5-level paging")
    }
    hardware = control
    hardwareRegisters = registers
    hardwarePermissions = PermissionMap(control)
    tlb.configure(control, hardwarePermissions)
    let generation = contexts.generation
    context = contexts.id(ContextTag(vpid: vpid, pcid: 0, root: rootFrame << 12))
    if contexts.generation != generation { tlb.flush() }
    tlb.setContext(context)
  }
}
