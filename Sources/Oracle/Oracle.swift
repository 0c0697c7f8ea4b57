import Machine
import ReferenceModel

/// The differential oracle (issue 5, item 1): the reference model plus what one walk does not
/// cover — sequences of operations, TLB and paging-structure-cache staleness, flushes, register
/// writes, guest and host stores, paravirtual batches — deciding for each observation whether
/// the architecture allows it (docs/fuzzing.md, "how the oracle decides").
///
/// The oracle keeps the machine as the architecture defines it (memory, registers, the nested
/// configuration), every value each memory word has held and every invalidation since, so that
/// for an access it can ask: is the observed outcome what a walk gives — now, or through
/// entries cached at some earlier epoch and not invalidated since (SEMANTICS §6.1, §6.2), under
/// some IMPL choice of §8? It decides membership rather than enumerating the set: the fresh
/// walk with the target's likely choices first, the search through stale and alternative
/// explanations only when needed. After each observation it keeps its state consistent with
/// what was observed: a fault invalidates; accessed/dirty writes that every explanation makes
/// happen, those some explanation makes are tracked as uncertain.
public final class Oracle {
  /// The semantics the target is judged against.
  public let mode: OracleMode
  /// The IMPL choices (SEMANTICS §8) tried first: the target's documented ones. Every other
  /// combination is still allowed; this only decides what is cheap.
  public var preferredChoices: Choices<Concrete>
  /// What the oracle did so far.
  public internal(set) var statistics = OracleStatistics()
  /// Walks the explanation search of one access may run before it gives up and accepts
  /// (``Oracle/searchLimit`` unless lowered, as tests do to exercise a search that gives up).
  public var searchWalkLimit = Oracle.searchLimit
  /// The choices the oracle walks with: the preferred ones, and a faulting walk setting the
  /// upper-level A bits §1.8 allows it to. That changes no outcome (those writes are made only
  /// where the nested dimension lets them, and raise nothing), and nothing a faulting walk
  /// writes is certain (``apply(_:fault:)``), so one walk tells what either choice writes.
  ///
  /// Likewise a guest-table read sets D in the NPT leaf it goes through (§3.2, IMPL): table
  /// reads need W there under either choice, so no outcome changes, and the frame it writes
  /// joins ``nestedFrames``, whose nested A/D bits the memory comparison ignores — whichever
  /// choice the target made, also once the frame is no longer a nested table.
  var walkChoices: Choices<Concrete> {
    var choices = preferredChoices
    choices.accessedOnFault = true
    choices.nestedDirtyOnTableRead = true
    return choices
  }
  /// Whether a search stops once it is saturated (``ExplanationSearch/saturated``); tests turn
  /// it off to compare with the whole search.
  var stopsSaturatedSearches = true

  /// The machine now: memory, the guest's controls and the nested dimension, as the model
  /// reads them (under paravirtualization: the machine-frame tables, no nested stage).
  var model: ConcreteModel
  let processor: Processor
  var registers: GuestRegisters
  /// The nested configuration (the guest-physical map under shadow and paravirtual paging).
  var nested: NestedPaging
  var vpid: UInt64
  /// The number of the operation being judged.
  var epoch = 0
  var history = MemoryHistory()
  var uncertain = UncertainBits()
  /// Host frames of nested tables whose A/D bits hardware or the model set.
  var nestedFrames: Set<UInt64> = []
  var timeline: RegisterTimeline
  /// Invalidations of linear and combined mappings, and of guest-physical mappings.
  var linear = InvalidationLog()
  var physical = InvalidationLog()
  var linearContexts: Set<CacheContext> = []
  var physicalContexts: Set<CacheContext> = []
  /// The epoch each tag was first in use: nothing tagged with it was cached before.
  var contextFirstSeen: [CacheContext: Int] = [:]
  var physicalFirstSeen: [CacheContext: Int] = [:]
  /// ``RegisterTimeline/rootStableSince``, kept up to date.
  var rootStableSince = 0
  /// CR4.PGE has been set since the last invalidation of global entries.
  var globalsPossible: Bool
  /// Under paravirtualization: the page types and the guest-physical map's configuration.
  var paravirtual: ParavirtualDomain?
  /// Per EP4TA, the last epoch at which an EPTP with that root and A/D flags off was in use
  /// (``cachedWithoutAccessedDirty``).
  var accessedDirtyOffUntil: [UInt64: Int] = [:]
  /// The epoch of the latest change to any word's value that guest reads see (every store,
  /// and the A/D updates of ``noteAccessedDirty(_:old:new:nested:)``).
  var latestGuestChange = Int.min
  /// The same for nested reads.
  var latestNestedChange = Int.min
  /// The result the target reported for the operation being judged (other than an access).
  var pendingObservation: TraceResult?
  /// Copies of memory for the explanation search's nested views, kept up to date through
  /// ``write(_:_:)``.
  var views = MemoryViews()

  /// An oracle for `state` under `mode`; throws when the reference model refuses the state or,
  /// under paravirtualization, when the domain builder cannot convert it.
  public init(
    mode: OracleMode, state: MachineState, preferredChoices: Choices<Concrete> = .kvm,
    initialVPID: UInt64 = 1
  ) throws(OracleSetupError) {
    self.mode = mode
    self.preferredChoices = preferredChoices
    processor = state.processor
    registers = state.guest
    nested = state.nested
    vpid = mode == .paravirtual ? 0 : initialVPID
    var modelState = state
    if mode == .paravirtual {
      let built = try ParavirtualDomain.build(state)
      paravirtual = built.domain
      modelState = built.machine
      registers = built.machine.guest
    }
    do {
      model = try ConcreteModel(modelState)
    } catch {
      throw OracleSetupError("the reference model refuses the state: \(error.message)")
    }
    globalsPossible = state.guest.cr4 & ControlBits.globalPages != 0
    let none = CacheContext(vpid: 0, pcid: 0, ep4ta: 0)
    timeline = RegisterTimeline(.init(start: 0, context: none, root: 0, levels: 0))
    timeline = RegisterTimeline(currentSpan())
    controlsChanged()
  }

  /// Judges one operation and its observation, and moves the oracle's state past it.
  public func check(_ operation: TraceOperation, _ observed: TraceObservation) -> Judgement {
    epoch += 1
    statistics.operations += 1
    if case .access(let address, let access) = operation {
      return checkAccess(operation, address, access, observed)
    }
    pendingObservation = observed.result
    defer { pendingObservation = nil }
    let expected = perform(operation, observed: observed)
    guard expected == observed.result else {
      return .diverges(
        Divergence(
          operation: operation, observed: observed, allowed: [expected],
          reason: "the operation's result is determined: \(Self.describe(expected))"))
    }
    return .agrees
  }

  /// The determined result of an operation other than an access, with its effect applied.
  private func perform(_ operation: TraceOperation, observed: TraceObservation) -> TraceResult {
    switch operation {
    case .access:
      preconditionFailure("accesses are judged by checkAccess")
    case .writeGuest(let gpa, let value):
      return writeGuest(gpa, value)
    case .writeHost(let hpa, let value):
      store(hpa, value)
      return .completed
    case .writeRegister(let register, let value):
      return writeRegister(register, value)
    case .invlpg(let address):
      return invlpg(address)
    case .invpcid(let type, let pcid, let address):
      return invpcid(type, pcid: pcid, address: address)
    case .invept(let type, let eptp):
      return invept(type, eptp: eptp)
    case .invvpid(let type, let target, let address):
      return invvpid(type, vpid: target, address: address)
    case .paravirtualBatch(let updates):
      return batch(updates)
    }
  }

  static func describe(_ result: TraceResult) -> String {
    TraceObservation(result).json.text()
  }

  // MARK: - Memory

  /// Stores a word: a new version of it (SEMANTICS §6.1: cached translations may still
  /// reflect the old one until invalidated).
  func store(_ address: UInt64, _ value: UInt64) {
    let old = model.state.memory[address]
    if old != value || uncertain[address] != 0 {
      history.recordWrite(
        address, old: old, new: value, epoch: epoch, oldUncertain: uncertain[address])
      latestGuestChange = epoch
      latestNestedChange = epoch
    }
    write(address, value)
    uncertain.clear(address)
  }

  /// Sets the accessed/dirty bits a walk writes in one word — `guest` as a guest entry's,
  /// `nested` as a nested entry's — and, where the other dimension's entry format gives them a
  /// meaning, records the update as a version that dimension's reads see (``MemoryHistory``):
  /// under EPT a guest A/D bit is an EPT entry's memory type or reserved bit, and an EPT A bit
  /// (bit 8) is a guest entry's G. Under NPT both dimensions keep A/D in bits 5 and 6, which
  /// neither reads as anything else. The version starts after the current operation, whose walk
  /// read the old value.
  func setAccessedDirty(_ address: UInt64, guest: UInt64, nested: UInt64) {
    let old = model.state.memory[address]
    let new = old | guest | nested
    guard new != old else { return }
    if case .ept = model.state.nested {
      var readers: MemoryHistory.Readers = []
      if (new ^ old) & guest != 0 { readers.insert(.nested) }
      if (new ^ old) & nested & ~EntryMasks.eptIgnoredByGuest != 0 { readers.insert(.guest) }
      if !readers.isEmpty {
        history.recordWrite(
          address, old: old, new: new, epoch: epoch + 1, seenBy: readers,
          oldUncertain: uncertain[address])
        if readers.contains(.guest) { latestGuestChange = epoch + 1 }
        if readers.contains(.nested) { latestNestedChange = epoch + 1 }
      }
    }
    write(address, new)
  }

  /// Sets a word of the machine's memory: every lasting change of the oracle's memory goes
  /// through here (a search's overlays and ``backing(_:batchIndex:)``'s probes are undone).
  func write(_ address: UInt64, _ value: UInt64) {
    model.state.memory[address] = value
    views.noteWrite(address, value)
  }

  /// The host physical address backing a guest-physical address through the nested
  /// configuration, whatever its rights: the trace vocabulary's guest stores and the
  /// paravirtual P2M. `nil` when no present, well-formed leaf maps it.
  ///
  /// The nested tables are memory too, and their A/D bits (bit 5 and 6 of an EPT entry are
  /// memory-type bits) may be uncertain: when the backing differs with the uncertain bits set,
  /// both are allowed, and the result the target reported for the operation being judged
  /// picks one (an unbacked refusal the missing backing, anything else the other; in a batch,
  /// the update at `batchIndex` is the refused one only if the target applied all before it and
  /// reported a failure). The bits stay uncertain.
  func backing(_ gpa: UInt64, batchIndex: Int? = nil) -> UInt64? {
    statistics.walks += 1
    let known = Self.backing(gpa, model: model, nested: nested)
    guard !uncertain.isEmpty, let observed = pendingObservation else { return known }
    var saved: [(word: UInt64, value: UInt64)] = []
    for (word, bits) in uncertain.bits {
      let value = model.state.memory[word]
      saved.append((word, value))
      model.state.memory[word] = value | bits
    }
    statistics.walks += 1
    let other = Self.backing(gpa, model: model, nested: nested)
    for (word, value) in saved.reversed() { model.state.memory[word] = value }
    guard other != known else { return known }
    let unbacked: Bool
    switch observed {
    case .refused(.unbackedGuestPhysical): unbacked = true
    case .batch(let status, let applied): unbacked = status != 0 && applied == batchIndex
    default: unbacked = false
    }
    return unbacked ? (known == nil ? known : other) : (known ?? other)
  }

  /// The backing of `gpa` through `nested` over `model`'s memory: a nested translation with
  /// guest paging off, which is a present, well-formed leaf unless it stops at a not-present
  /// or malformed entry (a leaf that denies a read still maps the address).
  static func backing(_ gpa: UInt64, model: ConcreteModel, nested: NestedPaging) -> UInt64? {
    var probe = model
    let bits: Int
    switch nested {
    case .none: return gpa
    case .ept(let ept):
      bits = ept.physicalAddressBits
      probe.state.nested = .ept(
        Concrete(), eptp: ept.eptp, addressBits: ept.physicalAddressBits,
        modeBasedExecute: ept.modeBasedExecute)
      probe.state.configuration.nested = .ept(
        levels: Int(ept.eptp >> 3 & 7) + 1, addressBits: ept.physicalAddressBits,
        executeOnly: ept.executeOnly, gigabytePages: ept.gigabytePages)
    case .npt(let npt):
      bits = npt.physicalAddressBits
      probe.state.nested = .npt(
        Concrete(), nCR3: npt.nCR3, hostEFER: npt.hostEFER, addressBits: npt.physicalAddressBits)
      probe.state.configuration.nested = .npt(
        levels: npt.hostCR4 & ControlBits.fiveLevel != 0 ? 5 : 4,
        addressBits: npt.physicalAddressBits)
    }
    probe.state.configuration.guestLevels = 0
    let translation = probe.translate(gpa, Access(.read), recording: true)
    switch translation.decidingRule {
    case .translated:
      return translation.address
    case .notPresent, .reservedBit, .eptNotPresent, .eptWriteWithoutRead,
      .eptExecuteOnlyUnsupported, .eptReservedBit, .eptBadMemoryType:
      return nil
    default:
      guard let leaf = translation.references.last else { return nil }
      let size: UInt64 = 1 << UInt64(12 + 9 * (leaf.level - 1))
      return leaf.value & EntryMasks.address(bits: bits) & ~(size - 1) | gpa & (size - 1)
    }
  }

  /// The accessed and dirty bits of a nested entry (EPT bits 8 and 9, NPT bits 5 and 6; none
  /// without a nested stage): no walk's outcome depends on them.
  var nestedAccessedDirtyMask: UInt64 {
    switch nested {
    case .ept: EntryMasks.eptAccessedDirty
    case .npt: EntryMasks.accessedDirty
    case .none: 0
    }
  }

  /// Whether a guest A/D write can never fault where the read of the same entry did not: there
  /// is no nested stage, or every guest paging-entry read already needs the write right (NPT,
  /// SEMANTICS §3.2; EPT with A/D flags, §2.4). Only then does no outcome depend on a guest
  /// entry's A/D bits.
  var accessedDirtyWritesCannotFault: Bool {
    switch model.state.nested {
    case .none, .npt: true
    case .ept(_, let accessedDirty, _): accessedDirty
    }
  }

  /// Whether, with EPT A/D flags on now, a combined mapping cached while an EPTP with the same
  /// root and A/D flags off was in use may still survive. Mappings are tagged by EP4TA alone
  /// (SEMANTICS §6.2), so setting EPTP bit 6 invalidates nothing: a guest paging entry cached
  /// then was read as a read, not a write (§2.4), and a walk using it needs no write right
  /// on the table it came from. The search then also judges walks whose upper guest levels,
  /// from the root down to any level, may have been read then, as reads, and whose lower levels
  /// are read now, as writes (``ExplanationSearch/Candidate/readsAsReadsFrom``).
  var cachedWithoutAccessedDirty: Bool {
    guard case .ept(_, true, _) = model.state.nested else { return false }
    return accessedDirtyOffEnd > physical.lastComplete(physicalContext)
  }

  /// The last epoch at which an EPTP with the current root and A/D flags off was in use;
  /// `Int.min` if none was.
  var accessedDirtyOffEnd: Int { accessedDirtyOffUntil[nestedRoot] ?? Int.min }

  var nestedAddressBits: Int {
    switch nested {
    case .none: processor.physicalAddressBits
    case .ept(let ept): ept.physicalAddressBits
    case .npt(let npt): npt.physicalAddressBits
    }
  }

  // MARK: - Controls

  /// The nested root that tags guest-physical mappings (the EP4TA, or N_CR3); 0 without one.
  var nestedRoot: UInt64 {
    switch nested {
    case .none: 0
    case .ept(let ept): ept.eptp & EntryMasks.address(bits: ept.physicalAddressBits)
    case .npt(let npt): npt.nCR3 & EntryMasks.address(bits: npt.physicalAddressBits)
    }
  }

  /// The tag of the guest's linear (or combined) mappings now.
  var linearContext: CacheContext {
    let pcid = registers.cr4 & ControlBits.contextIdentifiers != 0 ? registers.cr3 & 0xFFF : 0
    return mode.tagsByVirtualMachine
      ? CacheContext(vpid: vpid, pcid: pcid, ep4ta: nestedRoot)
      : CacheContext(vpid: 0, pcid: pcid, ep4ta: 0)
  }

  /// The tag of guest-physical mappings now.
  var physicalContext: CacheContext { CacheContext(vpid: 0, pcid: 0, ep4ta: nestedRoot) }

  /// The guest's paging depth now: 0 with paging off.
  var guestLevels: Int { model.state.configuration.guestLevels }

  func currentSpan() -> RegisterTimeline.Span {
    RegisterTimeline.Span(
      start: epoch, context: linearContext, root: model.state.guest.root, levels: guestLevels)
  }

  /// Re-derives the model's controls after a register or nested-configuration change; throws
  /// the model's refusal when the new controls are outside what it covers.
  func loadControls(_ next: GuestRegisters, nested nextNested: NestedPaging) throws(FormatError) {
    let modelNested: NestedPaging = mode == .paravirtual ? .none : nextNested
    let probe = MachineState(processor: processor, guest: next, nested: modelNested)
    let derived = try ModelState<Concrete>(probe)
    registers = next
    nested = nextNested
    model.state.configuration = derived.configuration
    model.state.guest = derived.guest
    model.state.nested = derived.nested
    controlsChanged()
  }

  /// Starts a new register span and notes the new tags.
  func controlsChanged() {
    timeline.change(to: currentSpan())
    rootStableSince = timeline.rootStableSince
    if linearContexts.insert(linearContext).inserted { contextFirstSeen[linearContext] = epoch }
    if physicalContexts.insert(physicalContext).inserted {
      physicalFirstSeen[physicalContext] = epoch
    }
    if registers.cr4 & ControlBits.globalPages != 0 { globalsPossible = true }
  }
}

/// Masks of entry fields the oracle's bookkeeping reads; the rules that use them are the
/// model's.
enum EntryMasks {
  /// Bits M-1:12: a table or frame address.
  static func address(bits: Int) -> UInt64 { mask(bits - 1, 12) }
  /// The x86 accessed and dirty flags (bits 5 and 6).
  static let accessedDirty: UInt64 = 0x60
  /// The EPT accessed and dirty flags (bits 8 and 9).
  static let eptAccessedDirty: UInt64 = 0x300
  /// The EPT A/D bits a guest entry ignores: bit 9 (D) is available to software in every
  /// guest entry; bit 8 (A) is G in a guest leaf.
  static let eptIgnoredByGuest: UInt64 = 0x200
}

/// Control-register bits the oracle's bookkeeping reads (SEMANTICS §1.1).
enum ControlBits {
  static let paging: UInt64 = 1 << 31
  static let physicalAddressExtension: UInt64 = 1 << 5
  static let globalPages: UInt64 = 1 << 7
  static let fiveLevel: UInt64 = 1 << 12
  static let contextIdentifiers: UInt64 = 1 << 17
  static let executeDisable: UInt64 = 1 << 11
  static let noFlush: UInt64 = 1 << 63
}
