import FastMMU
import Machine
import Testing
import Workloads

/// Shadow paging (SEMANTICS §5.1–5.5): fills, re-injection, dirty tracking, write
/// protection, unsync and resync, role splits, and the exported shadow tables.
@Suite struct ShadowTests {
  static let wp: UInt64 = 1 << 16
  static let smep: UInt64 = 1 << 20
  static let pke: UInt64 = 1 << 22
  static let smap: UInt64 = 1 << 21

  static func scenario(_ leaf: UInt64 = Bits.userData) -> Scenario {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame, bits: leaf)
    scenario.map(Layout.other, to: Layout.spareFrame)
    scenario.back(TLBTests.newFrame)
    return scenario
  }

  @Test func theFirstTouchIsAHypervisorFaultAndTheNextNone() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(scenario.state)
    let first = mmu.apply(.access(linearAddress: Layout.data + 8, Access(.read)))
    #expect(
      first.result == .outcome(.translated(hostPhysical: scenario.host(Layout.dataFrame) + 8)))
    #expect(first.exits == [.hypervisorPageFault])
    #expect(mmu.apply(.access(linearAddress: Layout.data + 16, Access(.read))).exits.isEmpty)
  }

  @Test func shadowTranslationsEqualNestedOnes() throws {
    var scenario = Self.scenario()
    scenario.map(0x8000_0000, to: 0x4000_0000, bits: Bits.userData, level: 2)
    let shadow = try ShadowMMU(scenario.state)
    let nested = try NestedMMU(scenario.state)
    for address in [Layout.data, Layout.other + 0xFF8, 0x8000_0000, 0x801F_F008, Layout.code] {
      for access in [Access(.read), Access(.write, user: true), Access(.fetch)] {
        #expect(shadow.access(address, access) == nested.access(address, access))
      }
    }
  }

  @Test func aGuestFaultIsReinjectedWithTheGuestWalksErrorCode() throws {
    var scenario = Self.scenario()
    scenario.efer = 0x500  // no NXE, no SMEP: a fetch reports no I/D bit
    let mmu = try ShadowMMU(scenario.state)
    let fetch = mmu.apply(.access(linearAddress: Layout.code, Access(.fetch)))
    #expect(fetch.result == .outcome(.pageFault(errorCode: 0, linearAddress: Layout.code)))
    #expect(fetch.exits == [.guestPageFault])
  }

  @Test func aGuestProtectionFaultLeavesTheGuestLeafAlone() throws {
    let scenario = Self.scenario(Bits.userReadOnly)
    let leaf = scenario.host(scenario.entry(Layout.data, level: 1))
    let mmu = try ShadowMMU(scenario.state)
    let before = mmu.hostWord(leaf)
    #expect(
      mmu.access(Layout.data, Access(.write, user: true))
        == .pageFault(errorCode: 0b111, linearAddress: Layout.data))
    #expect(mmu.hostWord(leaf) == before)
  }

  @Test func aCleanPageIsMappedReadOnlyUntilTheGuestSetsD() throws {
    let scenario = Self.scenario(EntryBits.directory | EntryBits.accessed)
    let leaf = scenario.host(scenario.entry(Layout.data, level: 1))
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.apply(.access(linearAddress: Layout.data, Access(.read))).exits == [.hypervisorPageFault])
    #expect(mmu.hostWord(leaf) & EntryBits.dirty == 0)
    let write = mmu.apply(.access(linearAddress: Layout.data, Access(.write)))
    #expect(write.exits == [.hypervisorPageFault])
    #expect(mmu.hostWord(leaf) & EntryBits.dirty != 0)
    #expect(mmu.apply(.access(linearAddress: Layout.data, Access(.write))).exits.isEmpty)
  }

  @Test func aWriteToAnUpperGuestTableTrapsAndTakesEffectAtOnce() throws {
    let scenario = Self.scenario()
    let otherTable = scenario.guest.entry(of: Layout.other, level: 2) & TableBuilder.addressMask
    let mmu = try ShadowMMU(scenario.state)
    _ = mmu.access(Layout.data)
    let write = mmu.apply(
      .writeGuest(
        guestPhysical: scenario.entry(Layout.data, level: 2),
        value: otherTable | EntryBits.directory))
    #expect(write.exits == [.writeProtectionTrap])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.spareFrame)))
  }

  @Test func anUnsyncedLevelOneTableLagsUntilINVLPG() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(scenario.state)
    _ = mmu.access(Layout.data)
    let entry = scenario.entry(Layout.data, level: 1)
    let first = mmu.apply(
      .writeGuest(guestPhysical: entry, value: TLBTests.newFrame | Bits.userData))
    #expect(first.exits == [.writeProtectionTrap])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    #expect(mmu.apply(.writeGuest(guestPhysical: entry + 8, value: 0)).exits.isEmpty)
    #expect(mmu.apply(.invlpg(linearAddress: Layout.data)).exits == [.invlpg])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(TLBTests.newFrame)))
  }

  @Test func movToCR3ResyncsAndProtectsTheTableAgain() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(scenario.state)
    _ = mmu.access(Layout.data)
    let entry = scenario.entry(Layout.data, level: 1)
    mmu.run(.writeGuest(guestPhysical: entry, value: TLBTests.newFrame | Bits.userData))
    let cr3 = mmu.apply(.writeRegister(.cr3, value: scenario.guest.root))
    #expect(cr3.exits == [.controlRegisterAccess])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(TLBTests.newFrame)))
    let again = mmu.apply(
      .writeGuest(guestPhysical: entry, value: Layout.dataFrame | Bits.userData))
    #expect(again.exits == [.writeProtectionTrap])
  }

  @Test func theEmulatePolicyTrapsEveryWriteAndAppliesItAtOnce() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(
      scenario.state, configuration: MMUConfiguration(shadowWritePolicy: .emulate))
    _ = mmu.access(Layout.data)
    let entry = scenario.entry(Layout.data, level: 1)
    for frame in [TLBTests.newFrame, Layout.dataFrame] {
      let write = mmu.apply(.writeGuest(guestPhysical: entry, value: frame | Bits.userData))
      #expect(write.exits == [.writeProtectionTrap])
      #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(frame)))
    }
  }

  @Test func aWriteAccessToAGuestPageTableIsAWriteProtectionTrap() throws {
    var scenario = Self.scenario()
    let table = scenario.entry(Layout.data, level: 1) & ~0xFFF
    scenario.map(Layout.code, to: table)  // the guest maps its own page table
    let mmu = try ShadowMMU(scenario.state)
    _ = mmu.access(Layout.data)
    let first = mmu.apply(.access(linearAddress: Layout.code, Access(.write)))
    #expect(first.result == .outcome(.translated(hostPhysical: scenario.host(table))))
    #expect(first.exits == [.writeProtectionTrap])
    #expect(mmu.apply(.access(linearAddress: Layout.code + 8, Access(.write))).exits.isEmpty)
  }

  @Test func withEmulationEveryWriteAccessToAGuestPageTableTraps() throws {
    var scenario = Self.scenario()
    let table = scenario.entry(Layout.data, level: 1) & ~0xFFF
    scenario.map(Layout.code, to: table)
    let mmu = try ShadowMMU(
      scenario.state, configuration: MMUConfiguration(shadowWritePolicy: .emulate))
    _ = mmu.access(Layout.data)
    for _ in 0..<2 {
      #expect(
        mmu.apply(.access(linearAddress: Layout.code, Access(.write))).exits == [
          .writeProtectionTrap
        ])
    }
  }

  // MARK: Role splits (SEMANTICS §5.1 role, §5.5 I6)

  @Test func cr0WPSplitsTheRole() throws {
    var scenario = Self.scenario(Bits.userReadOnly)
    scenario.cr0 &= ~Self.wp
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    let pages = mmu.shadowPageCount
    mmu.run(.writeRegister(.cr0, value: scenario.cr0 | Self.wp))
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .pageFault(errorCode: 0b11, linearAddress: Layout.data))
    #expect(mmu.shadowPageCount > pages)
  }

  @Test func smepWithoutWPSplitsTheRole() throws {
    var scenario = Self.scenario(Bits.userReadOnly)
    scenario.cr0 &= ~Self.wp
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    mmu.run(.writeRegister(.cr4, value: scenario.cr4 | Self.smep))
    #expect(
      mmu.access(Layout.data, Access(.fetch))
        == .pageFault(errorCode: 0b10001, linearAddress: Layout.data))
  }

  @Test func smapWithoutWPSplitsTheRole() throws {
    var scenario = Self.scenario(Bits.userReadOnly)
    scenario.cr0 &= ~Self.wp
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    mmu.run(.writeRegister(.cr4, value: scenario.cr4 | Self.smap))
    #expect(
      mmu.access(Layout.data, Access(.read))
        == .pageFault(errorCode: 0b1, linearAddress: Layout.data))
  }

  /// A kernel page made while keys were off would hide the user page from the key check once
  /// CR4.PKE is set (shadow seed 31 of the fuzzing campaign): with PKRU denying key 0, the
  /// supervisor read of the user page faults with PK.
  @Test func protectionKeysWithoutWPSplitTheRole() throws {
    var scenario = Self.scenario(Bits.userReadOnly)
    scenario.cr0 &= ~Self.wp
    let mmu = try ShadowMMU(scenario.state)
    mmu.run(.writeRegister(.pkru, value: 1))  // key 0: access disabled
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    mmu.run(.writeRegister(.cr4, value: scenario.cr4 | Self.pke))
    #expect(
      mmu.access(Layout.data, Access(.read))
        == .pageFault(errorCode: 0b10_0001, linearAddress: Layout.data))
  }

  @Test func nxSplitsTheRole() throws {
    let scenario = Self.scenario(Bits.userData | EntryBits.executeDisable)
    let mmu = try ShadowMMU(scenario.state)
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    mmu.run(.writeRegister(.efer, value: 0x500))
    #expect(mmu.access(Layout.data) == .pageFault(errorCode: 0b1001, linearAddress: Layout.data))
  }

  @Test func smepWithWPOffKeepsFetchesOfWrittenUserPagesFaulting() throws {
    var scenario = Self.scenario(Bits.userReadOnly)
    scenario.cr0 &= ~Self.wp
    scenario.cr4 |= Self.smep
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    #expect(
      mmu.access(Layout.data, Access(.fetch))
        == .pageFault(errorCode: 0b10001, linearAddress: Layout.data))
    #expect(
      mmu.access(Layout.data, Access(.read, user: true))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
  }

  @Test func sharedTablesReachedWithDifferentRightsGetDifferentShadowPages() throws {
    var scenario = Self.scenario()
    // Two PDEs point to the data page's table; the second grants no user access.
    let table = scenario.guest.entry(of: Layout.data, level: 2) & TableBuilder.addressMask
    let alias = Layout.data + 0x4000_0000
    scenario.guest.setEntry(of: alias, level: 2, to: table | EntryBits.present | EntryBits.writable)
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.data, Access(.read, user: true))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    #expect(
      mmu.access(alias, Access(.read, user: true))
        == .pageFault(errorCode: 0b101, linearAddress: alias))
  }

  // MARK: Large pages, paging off, the P2M, export

  @Test func aGuestLargePageIsSplinteredIntoSmallShadowEntries() throws {
    var scenario = Self.scenario()
    scenario.map(0x8000_0000, to: 0x4000_0000, bits: Bits.userData, level: 2)
    let mmu = try ShadowMMU(scenario.state)
    for offset: UInt64 in [0x1008, 0x1F_F000] {
      let observed = mmu.apply(.access(linearAddress: 0x8000_0000 + offset, Access(.read)))
      #expect(
        observed.result == .outcome(.translated(hostPhysical: scenario.host(0x4000_0000 + offset))))
      #expect(observed.exits == [.hypervisorPageFault])
    }
  }

  @Test func withGuestPagingOffTheShadowIsADirectMap() throws {
    var scenario = Self.scenario()
    scenario.cr0 = 0x11
    scenario.efer = 0
    let mmu = try ShadowMMU(scenario.state)
    #expect(
      mmu.access(Layout.dataFrame + 8)
        == .translated(hostPhysical: scenario.host(Layout.dataFrame) + 8))
    #expect(
      mmu.access(Layout.dataFrame + 16)
        == .translated(hostPhysical: scenario.host(Layout.dataFrame) + 16))
    #expect(mmu.statistics.exits[.hypervisorPageFault] == 1)
  }

  @Test func aP2MChangeTakesEffectWithoutAGuestFlush() throws {
    let scenario = Self.scenario()
    let state = scenario.state
    let mmu = try ShadowMMU(state)
    _ = mmu.access(Layout.data)
    let leaf = Scenario.nestedEntry(Layout.dataFrame, level: 1, in: state.memory)
    mmu.run(
      .writeHost(hostPhysical: leaf, value: 0x7700_0000 | EntryBits.eptAll | EntryBits.eptWriteBack)
    )
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: 0x7700_0000))
  }

  @Test func anUnbackedGuestPhysicalAddressIsReportedAsNestedPagingWould() throws {
    var scenario = Self.scenario()
    scenario.map(Layout.code, to: 0xC0_0000)
    var state = scenario.state
    let leaf = Scenario.nestedEntry(0xC0_0000, level: 1, in: state.memory)
    state.memory[leaf] = 0
    let shadow = try ShadowMMU(state)
    let nested = try NestedMMU(state)
    #expect(shadow.access(Layout.code) == nested.access(Layout.code))
  }

  @Test func theExportedShadowTablesTranslateAsTheShadowMMUDoes() throws {
    var scenario = Self.scenario()
    scenario.map(0x8000_0000, to: 0x4000_0000, bits: Bits.userData, level: 2)
    let mmu = try ShadowMMU(scenario.state)
    let addresses: [UInt64] = [Layout.data, Layout.other, 0x8000_3000, 0x801F_F000]
    for address in addresses { _ = mmu.access(address, Access(.write)) }
    let exported = mmu.snapshot()
    let shadow = try #require(exported.shadow)
    let hardware = MachineState(
      guest: GuestRegisters(cr0: shadow.cr0, cr3: shadow.cr3, cr4: shadow.cr4, efer: shadow.efer),
      memory: exported.memory)
    let walker = try NestedMMU(hardware, configuration: .uncached)
    for address in addresses {
      #expect(walker.access(address, Access(.write)) == mmu.access(address, Access(.write)))
    }
    #expect(shadow.unsyncTables.isEmpty)
  }

  @Test func exportListsUnsyncTables() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(scenario.state)
    _ = mmu.access(Layout.data)
    let entry = scenario.entry(Layout.data, level: 1)
    mmu.run(.writeGuest(guestPhysical: entry + 8, value: 0))
    #expect(mmu.snapshot().shadow?.unsyncTables == [entry >> 12])
  }

  @Test func aShadowTLBMissWalksFourShadowEntries() throws {
    let scenario = Self.scenario()
    let mmu = try ShadowMMU(scenario.state, configuration: MMUConfiguration(tlbEntries: 0))
    _ = mmu.access(Layout.data)
    mmu.resetStatistics()
    _ = mmu.access(Layout.data)
    #expect(mmu.statistics.walks == 1)
    #expect(mmu.statistics.referencesPerWalk == 4)
  }
}
