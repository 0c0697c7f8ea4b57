import Machine

/// Paravirtual paging (issue 4, part 3; SEMANTICS §5.8): the guest's tables hold machine
/// frames and are the tables the hardware walks, with no nested stage; they are mapped
/// read-only and validated by the hypervisor's page-type system. The guest hands its updates
/// over in hypercall batches (`mmu_update`), so there is no trap per write, and stale TLB
/// entries persist until an explicit flush.
///
/// Operations name guest memory by guest-physical (pseudo-physical) address, as everywhere in
/// the trace vocabulary; this MMU turns them into machine addresses through the P2M taken from
/// the snapshot's nested tables, as a PV kernel does with its own P2M. A snapshot with nested
/// paging is converted at creation by a domain builder that rewrites its tables to hold
/// machine frames. `INVLPG`, `INVPCID` and CR3 writes are hypercalls (`mmuext_op`); other
/// control-register writes are emulated privileged instructions; guest `#PF`s pass through the
/// hypervisor, which bounces them to the guest.
public final class ParavirtualMMU: VirtualMMU {
  /// The choices this MMU was made with.
  public let configuration: MMUConfiguration
  let processor: Processor
  let memory: HostMemory
  var registers: GuestRegisters
  var control: PagingControl
  var permissions: PermissionMap
  /// The guest's pseudo-physical-to-machine map.
  let p2m: NestedDimension
  var types: PageTypes
  /// The pinned root table's frame.
  var pinnedRoot: UInt64 = 0
  let tlb: TranslationBuffer
  /// The TLB's control block, read by the inlined hit path.
  @usableFromInline let tlbControl: UnsafeMutablePointer<TLBControl>
  let tlbEnabled: Bool
  let contexts = TaggingContexts()
  var context: UInt32 = 0
  let scratch = WalkScratch()
  var exits = ExitRecorder()
  var counters = MMUStatistics()

  /// Makes the MMU over a snapshot: converts its tables to machine frames if it has nested
  /// paging, then validates and pins the root. Throws if the tables do not validate (a
  /// writable mapping of a table frame, reserved bits, large pages).
  public init(_ state: MachineState, configuration: MMUConfiguration = MMUConfiguration())
    throws(MMUSetupError)
  {
    guard
      var control = PagingControl(
        state.guest, processor: state.processor, configuration: configuration), control.paging
    else {
      throw MMUSetupError("a paravirtual guest runs in 4- or 5-level long-mode paging")
    }
    self.configuration = configuration
    processor = state.processor
    memory = HostMemory.make(state.memory)
    p2m = try NestedDimension(state.nested)
    var registers = state.guest
    if !p2m.isIdentity {
      let root = try DomainBuilder(p2m: p2m, memory: memory).convert(
        root: control.root, levels: control.levels)
      registers.cr3 = root | state.guest.cr3 & 0xFFF
      guard
        let converted = PagingControl(
          registers, processor: state.processor, configuration: configuration)
      else {
        throw MMUSetupError("the converted CR3 does not decode")
      }
      control = converted
    }
    self.registers = registers
    self.control = control
    permissions = PermissionMap(control)
    types = PageTypes(reserved: control.reserved)
    #if NESTCHECK_BUGS
      types.bugs = configuration.bugs
    #endif
    tlbEnabled = configuration.tlbEntries > 0
    tlb = Recycler.shared.translationBuffer(capacity: max(1, configuration.tlbEntries))
    tlbControl = tlb.control
    guard types.acquireTable(control.root >> 12, level: control.levels, memory: memory) else {
      throw MMUSetupError(
        "the guest's tables do not validate: a table frame mapped writable, reserved bits, or a large page"
      )
    }
    types.setPinned(control.root >> 12, true)
    pinnedRoot = control.root >> 12
    controlsChanged()
  }

  /// Leaves the TLB and the memory to the ``Recycler``, emptied.
  deinit {
    Recycler.shared.recycle(tlb)
    Recycler.shared.recycle(memory)
  }

  /// ``MMUMode/paravirtual``.
  public var mode: MMUMode { .paravirtual }

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

  /// Translates an access: a TLB hit, else WALK64 over the machine-frame tables.
  @inlinable @inline(__always)
  public func translate(_ linearAddress: UInt64, _ access: Access) -> Outcome {
    if let hpa = TranslationBuffer.lookup(tlbControl, linearAddress, access) {
      return .translated(hostPhysical: hpa)
    }
    return walk(linearAddress, access)
  }

  @usableFromInline
  func walk(_ address: UInt64, _ access: Access) -> Outcome {
    var path = scratch.path
    var references = 0
    var stage = IdentityStage()
    let outcome = GuestWalk.run(
      address, access, control: control, permissions: permissions, stage: &stage,
      memory: memory.view, settings: GuestWalk.Settings(), path: &path, references: &references)
    counters.walks += 1
    counters.memoryReferences += references
    switch outcome {
    case .translated(let hpa):
      if tlbEnabled {
        tlb.insert(address, hostPhysical: hpa, path, context: context)
      }
    case .pageFault:
      exits.record(.guestPageFault)  // the hypervisor bounces the #PF to the guest
      tlb.invalidate(address: address) { _ in true }
    default: break
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
      memory.write(hpa, value)
      return .completed
    case .writeRegister(let register, let value):
      return write(register, value)
    case .invlpg(let address):
      exits.record(.hypercall)  // MMUEXT_INVLPG_LOCAL
      invalidate(address, includingGlobal: true)
      return .completed
    case .invpcid(let type, let pcid, let address):
      guard pcid <= 0xFFF else { return .refused(.invalidValue) }
      exits.record(.hypercall)
      switch type {
      case .individualAddress: invalidate(address, includingGlobal: false)
      case .singleContext:
        let names = contexts.names
        tlb.invalidateAll { !$0.isGlobal && names[$0.context].pcid == pcid }
      case .allContexts: tlb.invalidateAll { !$0.isGlobal }
      case .allContextsIncludingGlobal: tlb.flush()
      }
      return .completed
    case .invept, .invvpid:
      return .completed  // no VMX under paravirtualization
    case .paravirtualBatch(let updates):
      exits.record(.hypercall)
      return mmuUpdate(updates)
    }
  }

  private func invalidate(_ address: UInt64, includingGlobal: Bool) {
    tlb.invalidate(address: address) { includingGlobal || !$0.isGlobal }
  }

  /// Register writes: CR3 is `MMUEXT_NEW_BASEPTR` (a hypercall that validates and pins the
  /// new root and flushes unless asked not to); CR0, CR4 and EFER are emulated privileged
  /// writes; RFLAGS, PKRU and PKRS change what the hardware checks.
  func write(_ register: RegisterName, _ value: UInt64) -> TraceResult {
    guard register != .vpid, register != .nestedRoot else {
      return .refused(.invalidValue)  // no VMX under paravirtualization
    }
    guard var next = registers.writing(register, value) else { return .refused(.invalidValue) }
    if register == .cr3 {  // the guest names its root by guest-physical address
      guard let root = p2m.backing(next.cr3 & X86Entry.addressMask, memory.view) else {
        return .refused(.unbackedGuestPhysical)
      }
      next.cr3 = root & X86Entry.addressMask | value & 0xFFF
    }
    guard
      let decoded = PagingControl(
        next, processor: processor, configuration: configuration), decoded.paging,
      decoded.levels == control.levels
    else { return .refused(.invalidValue) }
    if register == .cr3 {
      exits.record(.hypercall)
      guard newBasePointer(decoded.root >> 12) else { return .refused(.validationFailed) }
    } else if [.cr0, .cr4, .efer].contains(register) {
      exits.record(.controlRegisterAccess)
    }
    let old = control
    registers = next
    control = decoded
    controlsChanged()
    if register == .cr3 {
      if !(decoded.pcidEnabled && value & ControlBit.cr3NoFlush != 0) {
        let pcid = decoded.pcid
        let names = contexts.names
        tlb.invalidateAll { !$0.isGlobal && names[$0.context].pcid == pcid }
      }
    } else if NestedMMU.flushesEverything(old, decoded) {
      tlb.flush()
    }
    return .completed
  }

  /// The machine now: machine memory, the registers with CR3 holding the machine root, no
  /// nested paging.
  public func snapshot() -> MachineState {
    MachineState(processor: processor, guest: registers, memory: memory.snapshot)
  }

  func controlsChanged() {
    permissions = PermissionMap(control)
    tlb.configure(control, permissions)
    let generation = contexts.generation
    context = contexts.id(ContextTag(vpid: 0, pcid: control.pcid, root: 0))
    if contexts.generation != generation { tlb.flush() }
    tlb.setContext(context)
  }
}
