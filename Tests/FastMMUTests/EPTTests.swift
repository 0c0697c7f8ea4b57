import FastMMU
import Machine
import Testing
import Workloads

/// EPT violations, their qualification, misconfigurations and EPT A/D flags (SEMANTICS §2).
@Suite struct EPTTests {
  static let uncached = MMUConfiguration.uncached

  /// The scenario every test starts from: one user data page at ``Layout/data``.
  static func scenario() -> Scenario {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    return scenario
  }

  @Test func aFinalWriteToAReadOnlyPageReportsTheFinalGPAAndQualification() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = Bits.eptReadExecute
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    // bit 1 (write), bits 3 and 5 (R and X granted), bit 7 (GLA valid), bit 8 (final).
    #expect(
      mmu.access(Layout.data + 0x10, Access(.write))
        == .eptViolation(
          qualification: 0b1_1010_1010, guestPhysical: Layout.dataFrame + 0x10,
          guestLinear: Layout.data + 0x10))
    #expect(mmu.statistics.exits[.eptViolation] == 1)
  }

  @Test func aFetchFromANonExecutablePageSetsBit2() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] =
      EntryBits.eptRead | EntryBits.eptWrite | EntryBits.eptWriteBack
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.fetch))
        == .eptViolation(
          qualification: 0b1_1001_1100, guestPhysical: Layout.dataFrame, guestLinear: Layout.data))
  }

  @Test func aGuestTableNotMappedInEPTReportsTheEntryGPAWithBit8Clear() throws {
    var scenario = Self.scenario()
    let tablePage = scenario.entry(Layout.data, level: 1) & ~0xFFF
    scenario.nestedBits[tablePage] = 0
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    // bit 0 (the walk reads), no rights (not present), bit 7; bit 8 clear: not the final GPA.
    #expect(
      mmu.access(Layout.data)
        == .eptViolation(
          qualification: 0b1000_0001, guestPhysical: scenario.entry(Layout.data, level: 1),
          guestLinear: Layout.data))
  }

  @Test func withEPTAccessedDirtyAGuestTableReadIsAWrite() throws {
    var scenario = Self.scenario()
    scenario.eptAccessedDirty = true
    let tablePage = scenario.entry(Layout.data, level: 2) & ~0xFFF
    scenario.nestedBits[tablePage] = Bits.eptReadExecute
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data)
        == .eptViolation(
          qualification: 0b1010_1011, guestPhysical: scenario.entry(Layout.data, level: 2),
          guestLinear: Layout.data))
  }

  @Test func aGuestAccessedFlagWriteNeedsEPTWriteAccess() throws {
    for readBit in [false, true] {
      var scenario = Scenario(.ept)
      scenario.map(Layout.data, to: Layout.dataFrame, bits: EntryBits.directory)  // A = 0
      let tablePage = scenario.entry(Layout.data, level: 1) & ~0xFFF
      scenario.nestedBits[tablePage] = Bits.eptReadExecute
      var configuration = Self.uncached
      configuration.eptReadBitOnAccessedDirtyWrite = readBit
      let mmu = try NestedMMU(scenario.state, configuration: configuration)
      #expect(
        mmu.access(Layout.data)
          == .eptViolation(
            qualification: 0b1010_1010 | (readBit ? 1 : 0),
            guestPhysical: scenario.entry(Layout.data, level: 1), guestLinear: Layout.data))
    }
  }

  @Test func eptAccessedDirtyFlagsAreSetOnTheWalkedEntries() throws {
    var scenario = Self.scenario()
    scenario.eptAccessedDirty = true
    let state = scenario.state
    let mmu = try NestedMMU(state, configuration: Self.uncached)
    _ = mmu.access(Layout.data, Access(.read))
    let dataLeaf = Scenario.nestedEntry(Layout.dataFrame, level: 1, in: state.memory)
    let tableLeaf = Scenario.nestedEntry(
      scenario.entry(Layout.data, level: 1), level: 1, in: state.memory)
    #expect(mmu.hostWord(dataLeaf) & 0x300 == 0x100)  // A, not D: a read
    #expect(mmu.hostWord(tableLeaf) & 0x300 == 0x300)  // A and D: guest-table reads are writes
    _ = mmu.access(Layout.data, Access(.write))
    #expect(mmu.hostWord(dataLeaf) & 0x300 == 0x300)
  }

  /// SEMANTICS §2.3 M1–M4.
  @Test(arguments: [
    ("write without read", EntryBits.eptWrite | EntryBits.eptWriteBack),
    ("write and execute without read", EntryBits.eptWrite | EntryBits.eptExecute | 6 << 3),
    ("a reserved address bit", EntryBits.eptAll | EntryBits.eptWriteBack | 1 << 50),
    ("memory type 2", EntryBits.eptAll | 2 << 3),
    ("memory type 7", EntryBits.eptAll | 7 << 3),
  ])
  func misconfigurations(_ name: String, leaf: UInt64) throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = leaf
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data) == .eptMisconfiguration(guestPhysical: Layout.dataFrame))
    #expect(mmu.statistics.exits[.eptMisconfiguration] == 1)
  }

  @Test func executeOnlyIsAMisconfigurationOnlyWhereUnsupported() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = EntryBits.eptExecute | EntryBits.eptWriteBack
    var state = scenario.state
    let supported = try NestedMMU(state, configuration: Self.uncached)
    #expect(
      supported.access(Layout.data, Access(.fetch))
        == .translated(hostPhysical: scenario.host(Layout.dataFrame)))
    guard case .ept(var ept) = state.nested else { return }
    ept.executeOnly = false
    state.nested = .ept(ept)
    let unsupported = try NestedMMU(state, configuration: Self.uncached)
    #expect(
      unsupported.access(Layout.data, Access(.fetch))
        == .eptMisconfiguration(guestPhysical: Layout.dataFrame))
  }

  @Test func aMisconfigurationOnThePathBeatsAPermissionViolation() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = Bits.eptReadOnly | 1 << 50
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.write))
        == .eptMisconfiguration(guestPhysical: Layout.dataFrame))
  }

  @Test func aNotPresentEntryStopsTheWalkBeforeItsMisconfiguredChildren() throws {
    var scenario = Self.scenario()
    scenario.nestedBits[Layout.dataFrame] = 0b010 << 0 | 1 << 50  // would misconfigure
    var state = scenario.state
    // Make the EPT PDE above the data frame not present (bits 2:0 = 0), keeping its address.
    let pde = Scenario.nestedEntry(Layout.dataFrame, level: 2, in: state.memory)
    state.memory[pde] &= ~7
    let mmu = try NestedMMU(state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data)
        == .eptViolation(
          qualification: 0b1_1000_0001, guestPhysical: Layout.dataFrame, guestLinear: Layout.data))
  }

  @Test func modeBasedExecuteUsesXUForUserModeAddresses() throws {
    var scenario = Self.scenario()
    scenario.modeBasedExecute = true
    scenario.nestedBits[Layout.dataFrame] =
      EntryBits.eptRead | EntryBits.eptExecute | EntryBits.eptWriteBack  // XS only
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    // The page is user-mode (U = 1 on the path): a fetch needs XU, which is clear.
    #expect(
      mmu.access(Layout.data, Access(.fetch, user: true))
        == .eptViolation(
          qualification: 0b1_1010_1100, guestPhysical: Layout.dataFrame, guestLinear: Layout.data))
  }
}
