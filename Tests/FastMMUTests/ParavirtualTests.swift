import FastMMU
import Machine
import Testing
import Workloads

/// Paravirtual paging (SEMANTICS §5.8): machine-frame tables, validated batches, no trap per
/// write, stale translations until an explicit flush.
@Suite struct ParavirtualTests {
  static func scenario() -> Scenario {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.map(Layout.other, to: Layout.spareFrame)
    scenario.back(TLBTests.newFrame)
    return scenario
  }

  @Test func aDomainBuiltFromANestedSnapshotTranslatesAsNestedPagingDoes() throws {
    let scenario = Self.scenario()
    let pv = try ParavirtualMMU(scenario.state)
    let nested = try NestedMMU(scenario.state)
    for address in [Layout.data, Layout.other + 8, Layout.code] {
      #expect(pv.access(address, Access(.write)) == nested.access(address, Access(.write)))
    }
    #expect(pv.snapshot().nested == .none)
  }

  @Test func aWalkReadsOnlyTheFourMachineTables() throws {
    let mmu = try ParavirtualMMU(Self.scenario().state, configuration: .uncached)
    _ = mmu.access(Layout.data)
    #expect(mmu.statistics.memoryReferences == 4)
  }

  @Test func aBatchIsOneHypercallAndStaysInvisibleUntilAFlush() throws {
    let scenario = Self.scenario()
    let mmu = try ParavirtualMMU(scenario.state)
    _ = mmu.access(Layout.data)
    _ = mmu.access(Layout.other)
    let batch = mmu.apply(
      .paravirtualBatch([
        PageTableUpdate(
          entry: scenario.entry(Layout.data, level: 1), value: TLBTests.newFrame | Bits.userData),
        PageTableUpdate(
          entry: scenario.entry(Layout.other, level: 1), value: TLBTests.newFrame | Bits.userData),
      ]))
    #expect(batch.result == .batch(status: 0, applied: 2))
    #expect(batch.exits == [.hypercall])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    #expect(mmu.apply(.invlpg(linearAddress: Layout.data)).exits == [.hypercall])
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(TLBTests.newFrame)))
    #expect(mmu.access(Layout.other) == .translated(hostPhysical: scenario.host(Layout.spareFrame)))
  }

  @Test func aWritableMappingOfAPageTableStopsTheBatch() throws {
    let scenario = Self.scenario()
    let table = scenario.entry(Layout.data, level: 1) & ~0xFFF
    let mmu = try ParavirtualMMU(scenario.state)
    let result = mmu.run(
      .paravirtualBatch([
        PageTableUpdate(entry: scenario.entry(Layout.other, level: 1), value: 0),
        PageTableUpdate(
          entry: scenario.entry(Layout.data, level: 1) + 8, value: table | Bits.userData),
        PageTableUpdate(entry: scenario.entry(Layout.data, level: 1) + 16, value: 0),
      ]))
    #expect(result == .batch(status: TraceResult.invalidStatus, applied: 1))
    mmu.run(.invlpg(linearAddress: Layout.other))
    #expect(mmu.access(Layout.other) == .pageFault(errorCode: 0, linearAddress: Layout.other))
  }

  @Test func aReadOnlyMappingOfAPageTableIsAllowed() throws {
    let scenario = Self.scenario()
    let table = scenario.entry(Layout.data, level: 1) & ~0xFFF
    let mmu = try ParavirtualMMU(scenario.state)
    let readOnly = Bits.userReadOnly
    #expect(
      mmu.run(
        .paravirtualBatch([
          PageTableUpdate(entry: scenario.entry(Layout.data, level: 1) + 8, value: table | readOnly)
        ])) == .batch(status: 0, applied: 1))
  }

  @Test func reservedBitsAreRejected() throws {
    let scenario = Self.scenario()
    let mmu = try ParavirtualMMU(scenario.state)
    let update = PageTableUpdate(
      entry: scenario.entry(Layout.data, level: 1),
      value: Layout.dataFrame | Bits.userData | 1 << 50)
    #expect(
      mmu.run(.paravirtualBatch([update])) == .batch(status: TraceResult.invalidStatus, applied: 0))
  }

  @Test func aDirectoryEntryMustPointToAValidTable() throws {
    var scenario = Self.scenario()
    scenario.map(Layout.code, to: TLBTests.newFrame)  // newFrame is now writable data
    let mmu = try ParavirtualMMU(scenario.state)
    let update = PageTableUpdate(
      entry: scenario.entry(Layout.data, level: 2), value: TLBTests.newFrame | EntryBits.directory)
    #expect(
      mmu.run(.paravirtualBatch([update])) == .batch(status: TraceResult.invalidStatus, applied: 0))
  }

  @Test func aDirectStoreToAPageTableTrapsAndIsValidated() throws {
    let scenario = Self.scenario()
    let table = scenario.entry(Layout.data, level: 1) & ~0xFFF
    let mmu = try ParavirtualMMU(scenario.state)
    let good = mmu.apply(
      .writeGuest(guestPhysical: scenario.entry(Layout.data, level: 1) + 8, value: 0))
    #expect(good == TraceObservation(.completed, exits: [.writeProtectionTrap]))
    let bad = mmu.apply(
      .writeGuest(
        guestPhysical: scenario.entry(Layout.data, level: 1) + 8, value: table | Bits.userData))
    #expect(bad == TraceObservation(.refused(.validationFailed), exits: [.writeProtectionTrap]))
  }

  @Test func aStoreToOrdinaryMemoryIsNotATrap() throws {
    let mmu = try ParavirtualMMU(Self.scenario().state)
    #expect(
      mmu.apply(.writeGuest(guestPhysical: Layout.dataFrame, value: 42))
        == TraceObservation(.completed))
  }

  @Test func aSnapshotWhoseTablesAreMappedWritableIsRefused() throws {
    var scenario = Self.scenario()
    scenario.map(Layout.code, to: scenario.entry(Layout.data, level: 1) & ~0xFFF)
    #expect(throws: MMUSetupError.self) { try ParavirtualMMU(scenario.state) }
  }

  @Test func aNewBasePointerMustValidate() throws {
    let scenario = Self.scenario()
    let mmu = try ParavirtualMMU(scenario.state)
    let cr3 = mmu.apply(.writeRegister(.cr3, value: Layout.dataFrame))
    #expect(cr3 == TraceObservation(.refused(.validationFailed), exits: [.hypercall]))
    let same = mmu.apply(.writeRegister(.cr3, value: scenario.guest.root))
    #expect(same == TraceObservation(.completed, exits: [.hypercall]))
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
  }

  @Test func guestFaultsPassThroughTheHypervisor() throws {
    let mmu = try ParavirtualMMU(Self.scenario().state)
    let fault = mmu.apply(.access(linearAddress: Layout.code, Access(.read)))
    #expect(fault.result == .outcome(.pageFault(errorCode: 0, linearAddress: Layout.code)))
    #expect(fault.exits == [.guestPageFault])
  }

  @Test func aDroppedTableMayBeMappedWritableAfterwards() throws {
    let scenario = Self.scenario()
    let otherTable = scenario.entry(Layout.other, level: 1) & ~0xFFF
    let mmu = try ParavirtualMMU(scenario.state)
    // Unlink the other page's table from its PDE, then map it writable: now allowed.
    let result = mmu.run(
      .paravirtualBatch([
        PageTableUpdate(entry: scenario.entry(Layout.other, level: 2), value: 0),
        PageTableUpdate(
          entry: scenario.entry(Layout.data, level: 1) + 8, value: otherTable | Bits.userData),
      ]))
    #expect(result == .batch(status: 0, applied: 2))
  }
}
