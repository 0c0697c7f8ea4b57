import Machine

/// Hardware nested paging (issue 4, part 1): the two-dimensional walk over the guest's tables
/// and EPT or NPT (SEMANTICS §4), a TLB of combined GVA→HPA entries tagged with VPID, PCID and
/// EP4TA, combined and guest-physical paging-structure caches, A/D updates, and the exits: EPT
/// violations with their qualification, EPT misconfigurations, `#NPF` with EXITINFO1/2.
///
/// Guest `#PF`s are delivered to the guest directly (no exit); guest `INVLPG`, `INVPCID` and
/// MOV to CR3 run without exits, as with unrestricted guests and EPT.
public final class NestedMMU: VirtualMMU {
  /// The choices this MMU was made with.
  public let configuration: MMUConfiguration
  let processor: Processor
  let memory: HostMemory
  var registers: GuestRegisters
  var nestedSnapshot: NestedPaging
  var nested: NestedDimension
  /// What a walk reads, behind one pointer: the hot path neither copies it nor checks
  /// exclusive access to it.
  let walker: UnsafeMutablePointer<WalkerState>
  let scratch = WalkScratch()
  /// The nested stage of ``nested``'s kind; its root and cache context follow the controls.
  let eptStage: UnsafeMutablePointer<EPTStage>?
  let nptStage: UnsafeMutablePointer<NPTStage>?
  /// The VPID (or ASID) tagging the guest's mappings.
  var vpid: UInt64
  let tlb: TranslationBuffer
  /// The TLB's control block, read by the inlined hit path.
  @usableFromInline let tlbControl: UnsafeMutablePointer<TLBControl>
  let tlbEnabled: Bool
  let guestCache: PagingStructureCache?
  let nestedCache: PagingStructureCache?
  let contexts = TaggingContexts()
  /// The names of the current (VPID, PCID, EP4TA) tag and of the EP4TA alone (the tag of
  /// guest-physical cache entries).
  var context: UInt32 = 0
  var nestedContext: UInt32 = 0
  var exits = ExitRecorder()
  var counters = MMUStatistics()

  /// Makes the MMU over a snapshot.
  public init(_ state: MachineState, configuration: MMUConfiguration = MMUConfiguration())
    throws(MMUSetupError)
  {
    guard
      let control = PagingControl(
        state.guest, processor: state.processor, configuration: configuration)
    else {
      throw MMUSetupError("the guest's paging mode (32-bit or PAE paging) is outside scope")
    }
    self.configuration = configuration
    processor = state.processor
    memory = HostMemory.make(state.memory)
    registers = state.guest
    nestedSnapshot = state.nested
    nested = try NestedDimension(state.nested)
    vpid = configuration.initialVPID
    tlbEnabled = configuration.tlbEntries > 0
    tlb = Recycler.shared.translationBuffer(capacity: max(1, configuration.tlbEntries))
    tlbControl = tlb.control
    #if NESTCHECK_BUGS
      tlbControl.pointee.writesIgnoreDirty = configuration.bugs.contains(.writeThroughCleanEntry)
    #endif
    let cacheEntries = configuration.pagingStructureCacheEntries
    let recycler = Recycler.shared
    guestCache =
      cacheEntries > 0 ? recycler.pagingStructureCache(entriesPerLevel: cacheEntries) : nil
    nestedCache =
      cacheEntries > 0 ? recycler.pagingStructureCache(entriesPerLevel: cacheEntries) : nil
    walker = .allocate(capacity: 1)
    walker.initialize(
      to: WalkerState(
        control: control, permissions: PermissionMap(control),
        settings: GuestWalk.Settings(
          accessedDirtyFirst: configuration.accessedDirtyBeforeFinalTranslation,
          cache: guestCache?.handle)))
    eptStage = nested.isEPT ? .allocate(capacity: 1) : nil
    nptStage = nested.isNPT ? .allocate(capacity: 1) : nil
    makeStages(initialize: true)
    controlsChanged()
  }

  /// Leaves the TLB, the caches and the memory to the ``Recycler``, emptied.
  deinit {
    let recycler = Recycler.shared
    recycler.recycle(tlb)
    if let guestCache { recycler.recycle(guestCache) }
    if let nestedCache { recycler.recycle(nestedCache) }
    recycler.recycle(memory)
    walker.deinitialize(count: 1)
    walker.deallocate()
    eptStage?.deinitialize(count: 1)
    eptStage?.deallocate()
    nptStage?.deinitialize(count: 1)
    nptStage?.deallocate()
  }

  /// The guest's decoded controls.
  var control: PagingControl { walker.pointee.control }

  /// (Re)builds the nested stage for the current nested root.
  func makeStages(initialize: Bool = false) {
    switch nested {
    case .none: break
    case .ept(let pointer, let format):
      let stage = EPTStage(
        pointer: pointer, format: format, cache: nestedCache?.handle, cacheContext: nestedContext,
        setsAccessedDirty: true,
        readBitOnAccessedDirtyWrite: configuration.eptReadBitOnAccessedDirtyWrite,
        scratch: scratch.stage)
      if let eptStage {
        if initialize { eptStage.initialize(to: stage) } else { eptStage.pointee = stage }
        #if NESTCHECK_BUGS
          eptStage.pointee.bugs = configuration.bugs
        #endif
      }
    case .npt(let npt):
      let stage = NPTStage(
        configuration: npt, cache: nestedCache?.handle, cacheContext: nestedContext,
        setsAccessedDirty: true, dirtyOnTableReads: configuration.nptDirtyOnTableReads,
        scratch: scratch.stage)
      if let nptStage {
        if initialize { nptStage.initialize(to: stage) } else { nptStage.pointee = stage }
        #if NESTCHECK_BUGS
          nptStage.pointee.bugs = configuration.bugs
        #endif
      }
    }
  }

  /// ``MMUMode/nested``.
  public var mode: MMUMode { .nested }

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

  /// Translates an access: a TLB hit, else the 2D walk of SEMANTICS §4.1.
  @inlinable @inline(__always)
  public func translate(_ linearAddress: UInt64, _ access: Access) -> Outcome {
    if let hpa = TranslationBuffer.lookup(tlbControl, linearAddress, access) {
      return .translated(hostPhysical: hpa)
    }
    return walk(linearAddress, access)
  }

  /// A TLB miss (or a hit that must re-walk): the full walk, then the fill or the fault's
  /// own invalidation.
  @usableFromInline
  func walk(_ address: UInt64, _ access: Access) -> Outcome {
    var path = scratch.path
    var references = 0
    let view = memory.view
    let outcome: Outcome
    if let eptStage {
      outcome = GuestWalk.run(
        address, access, control: walker.pointee.control,
        permissions: walker.pointee.permissions, stage: &eptStage.pointee, memory: view,
        settings: walker.pointee.settings, path: &path, references: &references)
    } else if let nptStage {
      outcome = GuestWalk.run(
        address, access, control: walker.pointee.control,
        permissions: walker.pointee.permissions, stage: &nptStage.pointee, memory: view,
        settings: walker.pointee.settings, path: &path, references: &references)
    } else {
      var stage = IdentityStage()
      outcome = GuestWalk.run(
        address, access, control: walker.pointee.control,
        permissions: walker.pointee.permissions, stage: &stage, memory: view,
        settings: walker.pointee.settings, path: &path, references: &references)
    }
    counters.walks &+= 1
    counters.memoryReferences &+= references
    guard case .translated(let hostPhysical) = outcome else {
      faulted(address, outcome)
      return outcome
    }
    if tlbEnabled {
      tlb.insert(address, hostPhysical: hostPhysical, path, context: context)
    }
    if let guestCache, path.top > path.leaf { fill(guestCache.handle, address, path) }
    return outcome
  }

  /// Caches the walk's upper levels: for each non-leaf level, the next table's host and guest
  /// addresses, its nested rights, and the guest rights so far (combined PSC entries).
  private func fill(_ cache: PagingStructureCache.Handle, _ address: UInt64, _ path: WalkPath) {
    let executeDisable = control.executeDisable
    var rights = path.inherited
    for level in stride(from: path.top, to: path.leaf, by: -1) {
      rights &= Rights.of(path.entry(level), executeDisableEnabled: executeDisable)
      cache.insert(
        address, level: level, context: context,
        table: path.entryHost(level - 1) & ~0xFFF, rights: UInt16(rights),
        guestTable: path.entryGuest(level - 1) & ~0xFFF,
        tableRights: path.tableRights(level - 1))
    }
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
      guard let hpa = nested.backing(gpa, memory.view) else {
        return .refused(.unbackedGuestPhysical)
      }
      memory.write(hpa, value)
      return .completed
    case .writeHost(let hpa, let value):
      memory.write(hpa, value)
      return .completed
    case .writeRegister(let register, let value):
      return write(register, value)
    case .invlpg(let address):
      invlpg(address)
      return .completed
    case .invpcid(let type, let pcid, let address):
      return invpcid(type, pcid: pcid, address: address)
    case .invept(let type, let eptp):
      return invept(type, eptp: eptp)
    case .invvpid(let type, let vpid, let address):
      return invvpid(type, vpid: vpid, address: address)
    case .paravirtualBatch(let updates):
      return applyAsGuestWrites(updates, memory: memory) { self.nested.backing($0, $1) }
    }
  }

  /// The machine now: memory with A/D flags set, registers, the nested configuration.
  public func snapshot() -> MachineState {
    MachineState(
      processor: processor, guest: registers, nested: nestedSnapshot, memory: memory.snapshot)
  }

  /// Recomputes everything derived from the registers, the VPID and the nested root.
  func controlsChanged() {
    let control = walker.pointee.control
    let permissions = PermissionMap(control)
    walker.pointee.permissions = permissions
    tlb.configure(control, permissions)
    let root = nested.root
    let generation = contexts.generation
    #if NESTCHECK_BUGS
      let pcid = control.bugs.contains(.pcidIgnoredInTag) ? 0 : control.pcid
    #else
      let pcid = control.pcid
    #endif
    context = contexts.id(ContextTag(vpid: vpid, pcid: pcid, root: root))
    nestedContext = contexts.id(ContextTag(vpid: .max, pcid: 0, root: root))
    if contexts.generation != generation {  // names start over: nothing cached may keep one
      tlb.flush()
      guestCache?.flush()
      nestedCache?.flush()
      context = contexts.id(ContextTag(vpid: vpid, pcid: pcid, root: root))
      nestedContext = contexts.id(ContextTag(vpid: .max, pcid: 0, root: root))
    }
    tlb.setContext(context)
    walker.pointee.settings.cacheContext = context
    eptStage?.pointee.cacheContext = nestedContext
    nptStage?.pointee.cacheContext = nestedContext
  }
}

/// What a hardware walk reads: the decoded controls, the permission map and the walk's
/// settings.
struct WalkerState {
  var control: PagingControl
  var permissions: PermissionMap
  var settings: GuestWalk.Settings
}

/// Applies a paravirtual batch as the guest writes it would be without a paravirtual
/// hypervisor (SEMANTICS §5.8 requests, without validation): in order, stopping at the first
/// entry no host memory backs.
func applyAsGuestWrites(
  _ updates: [PageTableUpdate], memory: HostMemory, backing: (UInt64, MemoryView) -> UInt64?
) -> TraceResult {
  for (index, update) in updates.enumerated() {
    guard let hpa = backing(update.entry, memory.view) else {
      return .batch(status: TraceResult.invalidStatus, applied: index)
    }
    var value = update.value
    if update.preserveAccessedDirty {
      value |= memory.read(hpa) & (X86Entry.accessed | X86Entry.dirty)
    }
    memory.write(hpa, value)
  }
  return .batch(status: 0, applied: updates.count)
}
