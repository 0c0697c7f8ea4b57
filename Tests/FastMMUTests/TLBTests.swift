import FastMMU
import Machine
import Testing
import Workloads

/// The TLB and paging-structure caches under nested paging, and every operation that drops
/// them (SEMANTICS §6). A changed entry stays invisible until a flush covers it: that is what
/// the architecture allows, and what these tests use to see whether a flush happened.
@Suite struct TLBTests {
  static let pge: UInt64 = 1 << 7
  static let pcide: UInt64 = 1 << 17
  static let noFlush: UInt64 = 1 << 63

  /// Data, code (global when asked) and other pages, each on its own frame.
  static func scenario(globalCode: Bool = false, cr4: UInt64 = 0x20) -> Scenario {
    var scenario = Scenario(.ept)
    scenario.cr4 = cr4
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.map(
      Layout.code, to: Layout.otherFrame, bits: Bits.userData | (globalCode ? EntryBits.global : 0))
    scenario.map(Layout.other, to: Layout.spareFrame)
    scenario.back(newFrame)
    return scenario
  }

  /// Points the guest leaf of `gva` at `frame`, without any flush.
  static func remap(_ mmu: VirtualMMU, _ scenario: Scenario, _ gva: UInt64, to frame: UInt64) {
    let bits = scenario.guest.entry(of: gva, level: 1) & ~TableBuilder.addressMask
    mmu.run(.writeGuest(guestPhysical: scenario.entry(gva, level: 1), value: frame | bits))
  }

  /// Whether `gva` still translates to the frame it had (`old`) rather than `new`.
  static func isStale(_ mmu: VirtualMMU, _ scenario: Scenario, _ gva: UInt64, old: UInt64)
    -> Bool
  {
    mmu.access(gva) == .translated(hostPhysical: scenario.host(old))
  }

  static let newFrame: UInt64 = 0xA0_0000

  @Test func aChangedEntryStaysInvisibleUntilINVLPG() throws {
    let scenario = Self.scenario()
    let mmu = try NestedMMU(scenario.state)
    _ = mmu.access(Layout.data)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.invlpg(linearAddress: Layout.data))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Self.newFrame)))
  }

  @Test func movToCR3FlushesNonGlobalTranslationsAndKeepsGlobalOnes() throws {
    let scenario = Self.scenario(globalCode: true, cr4: 0x20 | Self.pge)
    let mmu = try NestedMMU(scenario.state)
    _ = mmu.access(Layout.data)
    _ = mmu.access(Layout.code)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    Self.remap(mmu, scenario, Layout.code, to: Self.newFrame)
    mmu.run(.writeRegister(.cr3, value: scenario.guest.root))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    #expect(Self.isStale(mmu, scenario, Layout.code, old: Layout.otherFrame))
  }

  @Test func movToCR3WithTheNoFlushBitKeepsThePCIDsTranslations() throws {
    let scenario = Self.scenario(cr4: 0x20 | Self.pcide)
    let root = scenario.guest.root
    let mmu = try NestedMMU(scenario.state)
    mmu.run(.writeRegister(.cr3, value: root | 1))
    _ = mmu.access(Layout.data)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    mmu.run(.writeRegister(.cr3, value: root | 1 | Self.noFlush))
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.writeRegister(.cr3, value: root | 1))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
  }

  @Test func eachPCIDKeepsItsOwnTranslations() throws {
    let scenario = Self.scenario(cr4: 0x20 | Self.pcide)
    let root = scenario.guest.root
    let mmu = try NestedMMU(scenario.state)
    mmu.run(.writeRegister(.cr3, value: root | 1))
    _ = mmu.access(Layout.data)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    mmu.run(.writeRegister(.cr3, value: root | 2 | Self.noFlush))
    _ = mmu.access(Layout.other)
    mmu.run(.writeRegister(.cr3, value: root | 1 | Self.noFlush))
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.writeRegister(.cr3, value: root | 2 | Self.noFlush))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
  }

  struct InvpcidCase: Sendable, CustomStringConvertible {
    var type: InvpcidType
    var dataFlushed: Bool
    var globalFlushed: Bool
    var otherPCIDFlushed: Bool
    var description: String { type.rawValue }
  }

  @Test(arguments: [
    InvpcidCase(
      type: .individualAddress, dataFlushed: true, globalFlushed: false, otherPCIDFlushed: false),
    InvpcidCase(
      type: .singleContext, dataFlushed: true, globalFlushed: false, otherPCIDFlushed: false),
    InvpcidCase(
      type: .allContextsIncludingGlobal, dataFlushed: true, globalFlushed: true,
      otherPCIDFlushed: true),
    InvpcidCase(
      type: .allContexts, dataFlushed: true, globalFlushed: false, otherPCIDFlushed: true),
  ])
  func invpcid(_ expected: InvpcidCase) throws {
    let scenario = Self.scenario(globalCode: true, cr4: 0x20 | Self.pge | Self.pcide)
    let root = scenario.guest.root
    let mmu = try NestedMMU(scenario.state)
    mmu.run(.writeRegister(.cr3, value: root | 2))
    _ = mmu.access(Layout.other)
    mmu.run(.writeRegister(.cr3, value: root | 1 | Self.noFlush))
    _ = mmu.access(Layout.data)
    _ = mmu.access(Layout.code)
    for gva in [Layout.data, Layout.code, Layout.other] {
      Self.remap(mmu, scenario, gva, to: Self.newFrame)
    }
    #expect(mmu.run(.invpcid(expected.type, pcid: 1, linearAddress: Layout.data)) == .completed)
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame) != expected.dataFlushed)
    #expect(
      Self.isStale(mmu, scenario, Layout.code, old: Layout.otherFrame) != expected.globalFlushed)
    mmu.run(.writeRegister(.cr3, value: root | 2 | Self.noFlush))
    #expect(
      Self.isStale(mmu, scenario, Layout.other, old: Layout.spareFrame) != expected.otherPCIDFlushed
    )
  }

  @Test func invpcidRefusesAPCIDWiderThanTwelveBits() throws {
    let mmu = try NestedMMU(Self.scenario().state)
    #expect(
      mmu.run(.invpcid(.singleContext, pcid: 0x1000, linearAddress: 0)) == .refused(.invalidValue))
  }

  @Test func aChangedEPTEntryStaysInvisibleUntilINVEPT() throws {
    let scenario = Self.scenario()
    let state = scenario.state
    let mmu = try NestedMMU(state)
    guard case .ept(let ept) = state.nested else { return }
    _ = mmu.access(Layout.data)
    let leaf = Scenario.nestedEntry(Layout.dataFrame, level: 1, in: state.memory)
    mmu.run(
      .writeHost(hostPhysical: leaf, value: 0x7700_0000 | EntryBits.eptAll | EntryBits.eptWriteBack)
    )
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.invept(.singleContext, eptp: ept.eptp + 0x1000))  // another EP4TA: no effect
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.invept(.singleContext, eptp: ept.eptp))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: 0x7700_0000))
  }

  @Test func invEPTOfAllContextsDropsEverything() throws {
    let scenario = Self.scenario()
    let state = scenario.state
    let mmu = try NestedMMU(state)
    _ = mmu.access(Layout.data)
    let leaf = Scenario.nestedEntry(Layout.dataFrame, level: 1, in: state.memory)
    mmu.run(
      .writeHost(hostPhysical: leaf, value: 0x7700_0000 | EntryBits.eptAll | EntryBits.eptWriteBack)
    )
    mmu.run(.invept(.allContexts, eptp: 0))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: 0x7700_0000))
  }

  struct InvvpidCase: Sendable, CustomStringConvertible {
    var type: InvvpidType
    var vpid: UInt64
    var flushed: Bool
    var globalFlushed: Bool
    var description: String { "\(type.rawValue) of VPID \(vpid)" }
  }

  @Test(arguments: [
    InvvpidCase(type: .individualAddress, vpid: 1, flushed: true, globalFlushed: false),
    InvvpidCase(type: .singleContext, vpid: 1, flushed: true, globalFlushed: true),
    InvvpidCase(type: .singleContext, vpid: 2, flushed: false, globalFlushed: false),
    InvvpidCase(type: .allContexts, vpid: 0, flushed: true, globalFlushed: true),
    InvvpidCase(type: .singleContextRetainingGlobals, vpid: 1, flushed: true, globalFlushed: false),
  ])
  func invvpid(_ expected: InvvpidCase) throws {
    let scenario = Self.scenario(globalCode: true, cr4: 0x20 | Self.pge)
    let mmu = try NestedMMU(scenario.state)  // runs with VPID 1
    _ = mmu.access(Layout.data)
    _ = mmu.access(Layout.code)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    Self.remap(mmu, scenario, Layout.code, to: Self.newFrame)
    #expect(
      mmu.run(.invvpid(expected.type, vpid: expected.vpid, linearAddress: Layout.data))
        == .completed)
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame) != expected.flushed)
    #expect(
      Self.isStale(mmu, scenario, Layout.code, old: Layout.otherFrame) != expected.globalFlushed)
  }

  @Test func invvpidRefusesVPIDZeroForOneContext() throws {
    let mmu = try NestedMMU(Self.scenario().state)
    #expect(mmu.run(.invvpid(.singleContext, vpid: 0, linearAddress: 0)) == .refused(.invalidValue))
  }

  @Test func eachVPIDKeepsItsOwnTranslations() throws {
    let scenario = Self.scenario()
    let mmu = try NestedMMU(scenario.state)
    _ = mmu.access(Layout.data)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    mmu.run(.writeRegister(.vpid, value: 2))
    _ = mmu.access(Layout.other)
    mmu.run(.writeRegister(.vpid, value: 1))
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    mmu.run(.writeRegister(.vpid, value: 2))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
  }

  @Test func aPageFaultInvalidatesTheStaleTranslationThatCausedIt() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame, bits: Bits.userReadOnly)
    scenario.back(Self.newFrame)
    let mmu = try NestedMMU(scenario.state)
    _ = mmu.access(Layout.data, Access(.read, user: true))
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    // The stale entry denies a write; the re-walk faults, and the fault drops the entry.
    #expect(
      mmu.access(Layout.data, Access(.write, user: true))
        == .pageFault(errorCode: 0b111, linearAddress: Layout.data))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
  }

  @Test func anEPTViolationInvalidatesTheCombinedTranslationOfItsLinearAddress() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.nestedBits[Layout.dataFrame] = Bits.eptReadOnly
    let state = scenario.state
    let mmu = try NestedMMU(state)
    _ = mmu.access(Layout.data)
    let leaf = Scenario.nestedEntry(Layout.dataFrame, level: 1, in: state.memory)
    mmu.run(.writeHost(hostPhysical: leaf, value: 0x7700_0000 | Bits.eptReadOnly))
    #expect(Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
    guard case .eptViolation = mmu.access(Layout.data, Access(.write)) else {
      Issue.record("expected an EPT violation")
      return
    }
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: 0x7700_0000))
  }

  /// Guest paging off over 4-level NPT whose PDPT entry 0 maps guest-physical 0..1 GiB to host
  /// 0 as one 1-GiB page (nested seed 13 of the fuzzing campaign).
  static func unpagedGuestOverGigabytePage() throws -> MachineState {
    try MachineState.load(
      json: """
        {"format": "nestcheck-state", "version": 1,
         "processor": {"vendor": "amd", "physicalAddressBits": 39, "gigabytePages": true},
         "guest": {"cr0": "0x11", "cr3": "0x0", "cr4": "0x0", "efer": "0x0", "rflags": "0x2",
                   "pkru": "0x0", "pkrs": "0x0"},
         "nested": {"kind": "npt", "ncr3": "0x80000000", "hostCR4": "0x20", "hostEFER": "0xd00",
                    "physicalAddressBits": 48},
         "memory": {"0x80000000": "0x80001007", "0x80001000": "0x87"}}
        """)
  }

  /// Without guest paging a cached translation is one of the nested page: a fault on any
  /// address of it drops every 4-KiB piece the TLB holds (Intel SDM Vol. 3A §4.10.2.3; SEMANTICS
  /// §6.1, §6.2), not only the faulting address's own.
  @Test func aNestedFaultWithoutGuestPagingDropsEveryPieceOfTheNestedPage() throws {
    let mmu = try NestedMMU(Self.unpagedGuestOverGigabytePage())
    #expect(mmu.access(0x20_c000) == .translated(hostPhysical: 0x20_c000))
    mmu.run(.writeHost(hostPhysical: 0x8000_1000, value: 0))  // no flush
    #expect(mmu.access(0x20_c000) == .translated(hostPhysical: 0x20_c000), "cached")
    guard case .nestedPageFault = mmu.access(0x20_0000) else {
      Issue.record("the PDPT entry is gone: a walk of another address faults")
      return
    }
    guard case .nestedPageFault = mmu.access(0x20_c000) else {
      Issue.record("the fault on 0x200000 dropped the piece of 0x20c000 too")
      return
    }
  }

  /// Without guest paging a cached translation is a guest-physical mapping, which no VPID tags
  /// (Intel SDM Vol. 3C §29.4.1; SEMANTICS §6.2): a nested fault on its address under another
  /// VPID drops it too (nested seed 40 of the fuzzing campaign).
  @Test func aNestedFaultWithoutGuestPagingDropsTheMappingCachedUnderAnotherVPID() throws {
    let mmu = try NestedMMU(Self.unpagedGuestOverGigabytePage())
    mmu.run(.writeRegister(.vpid, value: 3))
    #expect(mmu.access(0x20_4000) == .translated(hostPhysical: 0x20_4000))
    mmu.run(.writeRegister(.vpid, value: 0))
    mmu.run(.writeHost(hostPhysical: 0x8000_1000, value: 0))  // no flush
    guard case .nestedPageFault = mmu.access(0x20_4000) else {
      Issue.record("VPID 0 cached nothing: its walk faults")
      return
    }
    mmu.run(.writeRegister(.vpid, value: 3))
    guard case .nestedPageFault = mmu.access(0x20_4000) else {
      Issue.record("the fault dropped VPID 3's guest-physical mapping of 0x204000")
      return
    }
  }

  /// A change of how entries read (EFER.NXE here: bit 63 becomes reserved) made while another
  /// VPID runs drops that VPID's translations too (nested seed 58 of the fuzzing campaign).
  @Test func changingEFERNXEDropsTheTranslationsOfEveryVPID() throws {
    let scenario = Self.scenario()
    let mmu = try NestedMMU(scenario.state)
    mmu.run(.writeRegister(.vpid, value: 1))
    _ = mmu.access(Layout.data)
    Self.remap(mmu, scenario, Layout.data, to: Self.newFrame)
    mmu.run(.writeRegister(.vpid, value: 0))
    mmu.run(.writeRegister(.efer, value: scenario.efer & ~(1 << 11)))
    mmu.run(.writeRegister(.vpid, value: 1))
    #expect(!Self.isStale(mmu, scenario, Layout.data, old: Layout.dataFrame))
  }

  @Test func changingCR4PGEFlushesGlobalTranslations() throws {
    let scenario = Self.scenario(globalCode: true, cr4: 0x20 | Self.pge)
    let mmu = try NestedMMU(scenario.state)
    _ = mmu.access(Layout.code)
    Self.remap(mmu, scenario, Layout.code, to: Self.newFrame)
    mmu.run(.writeRegister(.cr4, value: 0x20))
    #expect(!Self.isStale(mmu, scenario, Layout.code, old: Layout.otherFrame))
  }

  @Test func aTLBHitNeedsNoMemoryReference() throws {
    let mmu = try NestedMMU(Self.scenario().state)
    _ = mmu.access(Layout.data)
    mmu.resetStatistics()
    _ = mmu.access(Layout.data + 0x40)
    #expect(mmu.statistics.walks == 0)
    #expect(mmu.statistics.memoryReferences == 0)
  }

  @Test func pagingStructureCachesCutAWalkToTwoReferences() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.map(Layout.data + 0x1000, to: Layout.dataFrame + 0x1000)
    let mmu = try NestedMMU(scenario.state, configuration: MMUConfiguration(tlbEntries: 0))
    _ = mmu.access(Layout.data)
    mmu.resetStatistics()
    #expect(
      mmu.access(Layout.data + 0x1000)
        == .translated(hostPhysical: scenario.host(Layout.dataFrame + 0x1000)))
    #expect(mmu.statistics.memoryReferences == 2)
  }

  @Test func aCachedUpperEntryStaysInUseUntilINVLPG() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.map(Layout.other, to: Layout.spareFrame)  // same PT index, another PT
    let otherTable = scenario.guest.entry(of: Layout.other, level: 2) & TableBuilder.addressMask
    let mmu = try NestedMMU(scenario.state, configuration: MMUConfiguration(tlbEntries: 0))
    _ = mmu.access(Layout.data)
    mmu.run(
      .writeGuest(
        guestPhysical: scenario.entry(Layout.data, level: 2),
        value: otherTable | EntryBits.directory))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    mmu.run(.invlpg(linearAddress: Layout.data))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.spareFrame)))
  }
}
