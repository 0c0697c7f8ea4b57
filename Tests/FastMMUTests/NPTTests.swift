import FastMMU
import Machine
import Testing
import Workloads

/// AMD nested paging: `#NPF` with EXITINFO1/2 (SEMANTICS §3).
@Suite struct NPTTests {
  static let uncached = MMUConfiguration.uncached
  static let final: UInt64 = 1 << 32
  static let guestTable: UInt64 = 1 << 33

  static func scenario() -> Scenario {
    var scenario = Scenario(.npt)
    scenario.map(Layout.data, to: Layout.dataFrame)
    return scenario
  }

  @Test func translatesThroughNPT() throws {
    let scenario = Self.scenario()
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data + 8) == .translated(hostPhysical: scenario.host(Layout.dataFrame) + 8))
    #expect(mmu.statistics.memoryReferences == 24)
  }

  @Test func anUnmappedFinalGPAReportsBit32AndTheGPA() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = 0
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    // Not present (P = 0), a read (W = 0), user (US = 1: every nested access is user-mode).
    #expect(
      mmu.access(Layout.data + 8, Access(.read))
        == .nestedPageFault(exitInfo1: 0b100 | Self.final, exitInfo2: Layout.dataFrame + 8))
    #expect(mmu.statistics.exits[.nestedPageFault] == 1)
  }

  @Test func guestTableAccessesAreWritesAndReportBit33() throws {
    var scenario = Self.scenario()
    let tablePage = scenario.entry(Layout.data, level: 1) & ~0xFFF
    scenario.nestedBits[tablePage] = EntryBits.present | EntryBits.user  // read-only
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.read))
        == .nestedPageFault(
          exitInfo1: 0b111 | Self.guestTable, exitInfo2: scenario.entry(Layout.data, level: 1)))
  }

  @Test func everyNestedEntryMustBeUserAccessible() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = EntryBits.present | EntryBits.writable
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    // A supervisor guest access still fails: the nested walk is user-mode.
    #expect(
      mmu.access(Layout.data, Access(.read))
        == .nestedPageFault(exitInfo1: 0b101 | Self.final, exitInfo2: Layout.dataFrame))
  }

  @Test func aReservedBitInANestedEntryReportsRSV() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = EntryBits.directory | 1 << 50
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .nestedPageFault(exitInfo1: 0b1111 | Self.final, exitInfo2: Layout.dataFrame))
  }

  @Test func aFetchFromANestedNXPageReportsID() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = EntryBits.directory | EntryBits.executeDisable
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.fetch))
        == .nestedPageFault(exitInfo1: 0b10101 | Self.final, exitInfo2: Layout.dataFrame))
  }

  @Test(arguments: [true, false])
  func guestTableReadsSetTheNestedDirtyFlagAsConfigured(_ dirtyOnReads: Bool) throws {
    let scenario = Self.scenario()
    var configuration = Self.uncached
    configuration.nptDirtyOnTableReads = dirtyOnReads
    let mmu = try NestedMMU(scenario.state, configuration: configuration)
    _ = mmu.access(Layout.data, Access(.read))
    let state = scenario.state
    let leaf = mmu.hostWord(
      Scenario.nestedEntry(scenario.entry(Layout.data, level: 1), level: 1, in: state.memory))
    #expect(leaf & EntryBits.accessed != 0)
    #expect((leaf & EntryBits.dirty != 0) == dirtyOnReads)
  }
}
