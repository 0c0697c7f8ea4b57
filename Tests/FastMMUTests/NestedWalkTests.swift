import FastMMU
import Machine
import Testing
import Workloads

/// The two-dimensional walk (SEMANTICS §4) and the guest rules it applies (§1).
@Suite struct NestedWalkTests {
  static let uncached = MMUConfiguration.uncached

  @Test func aFourOverFourWalkMakesTwentyFourReferences() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data + 0x123)
        == .translated(hostPhysical: scenario.host(Layout.dataFrame) + 0x123))
    #expect(mmu.statistics.walks == 1)
    #expect(mmu.statistics.memoryReferences == 24)
  }

  /// SEMANTICS §4.2: Σ over guest entries read of (1 + nested refs) + nested refs of the final
  /// GPA, with m − k_h + 1 nested refs for a host leaf at level k_h.
  @Test(arguments: [(1, 1, 24), (2, 2, 15), (3, 3, 8), (1, 3, 14), (2, 1, 19)])
  func largePagesShortenTheWalk(guestLevel: Int, hostLevel: Int, references: Int) throws {
    var scenario = Scenario(.ept)
    scenario.nestedPageLevel = hostLevel
    let gva: UInt64 = 0x8000_0000
    let gpa: UInt64 = 0x4000_0000
    if guestLevel == 1 {
      scenario.map(gva + 0x5000, to: gpa + 0x5000)
    } else {
      scenario.map(gva, to: gpa, bits: Bits.userData, level: guestLevel)
    }
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(gva + 0x5008) == .translated(hostPhysical: scenario.host(gpa + 0x5008)))
    #expect(mmu.statistics.memoryReferences == references)
  }

  @Test func withoutNestingAWalkMakesFourReferences() throws {
    var scenario = Scenario(.none)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data) == .translated(hostPhysical: Layout.dataFrame))
    #expect(mmu.statistics.memoryReferences == 4)
  }

  @Test func aNonCanonicalAddressRaisesGPBeforeAnyReference() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(0x0000_8000_0000_0000) == .generalProtection)
    #expect(mmu.statistics.memoryReferences == 0)
  }

  @Test func aNotPresentEntryFaultsWithTheAccessBitsOnly() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    let fault = mmu.access(Layout.other, Access(.write, user: true))
    #expect(fault == .pageFault(errorCode: 0b110, linearAddress: Layout.other))
  }

  @Test func aReservedBitFaultsWithPresentAndRSVD() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame, bits: Bits.userData | 1 << 50)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data) == .pageFault(errorCode: 0b1001, linearAddress: Layout.data))
  }

  @Test func executeDisableWithoutNXEIsAReservedBit() throws {
    var scenario = Scenario(.ept)
    scenario.efer = 0x500
    scenario.map(Layout.data, to: Layout.dataFrame, bits: Bits.userData | EntryBits.executeDisable)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data) == .pageFault(errorCode: 0b1001, linearAddress: Layout.data))
  }

  @Test func aPS1InAPML4EIsReserved() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.guest.setEntry(of: Layout.data, level: 4, to: 0x2000 | EntryBits.directory | 0x80)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data) == .pageFault(errorCode: 0b1001, linearAddress: Layout.data))
  }

  @Test func bit8OfAPML4EIsReservedOnAMDOnly() throws {
    for vendor in [Vendor.intel, .amd] {
      var scenario = Scenario(.none)
      scenario.vendor = vendor
      scenario.map(Layout.data, to: Layout.dataFrame)
      scenario.guest.setEntry(of: Layout.data, level: 4, to: 0x2000 | EntryBits.directory | 0x100)
      let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
      let expected: Outcome =
        vendor == .amd
        ? .pageFault(errorCode: 0b1001, linearAddress: Layout.data)
        : .translated(hostPhysical: Layout.dataFrame)
      #expect(mmu.access(Layout.data) == expected)
    }
  }

  /// SEMANTICS §1.5 rules 1–6 and the error code of §1.6.
  struct ProtectionCase: CustomStringConvertible, Sendable {
    var rule: String
    var leaf: UInt64
    var access: Access
    var cr0: UInt64 = GuestSetup.cr0
    var cr4: UInt64 = GuestSetup.cr4(levels: 4)
    var rflags: UInt64 = 0x2
    var errorCode: UInt64?
    var description: String { rule }
  }

  static let smep: UInt64 = 1 << 20
  static let smap: UInt64 = 1 << 21
  static let protectionCases: [ProtectionCase] = [
    ProtectionCase(
      rule: "user access to a supervisor page", leaf: Bits.kernelData,
      access: Access(.read, user: true), errorCode: 0b101),
    ProtectionCase(
      rule: "user write to a read-only page", leaf: Bits.userReadOnly,
      access: Access(.write, user: true), errorCode: 0b111),
    ProtectionCase(
      rule: "fetch from an execute-disabled page", leaf: Bits.userData | EntryBits.executeDisable,
      access: Access(.fetch, user: true), errorCode: 0b10101),
    ProtectionCase(
      rule: "SMEP: supervisor fetch from a user page", leaf: Bits.userData,
      access: Access(.fetch), cr4: 0x20 | smep, errorCode: 0b10001),
    ProtectionCase(
      rule: "SMAP: supervisor read of a user page", leaf: Bits.userData, access: Access(.read),
      cr4: 0x20 | smap, errorCode: 0b1),
    ProtectionCase(
      rule: "SMAP: EFLAGS.AC rescues an explicit access", leaf: Bits.userData,
      access: Access(.read), cr4: 0x20 | smap, rflags: 0x4_0002, errorCode: nil),
    ProtectionCase(
      rule: "SMAP: EFLAGS.AC never rescues an implicit access", leaf: Bits.userData,
      access: Access(.read, implicit: true), cr4: 0x20 | smap, rflags: 0x4_0002, errorCode: 0b1),
    ProtectionCase(
      rule: "WP: supervisor write to a read-only page", leaf: Bits.userReadOnly,
      access: Access(.write), errorCode: 0b11),
    ProtectionCase(
      rule: "no WP: supervisor write to a read-only page succeeds", leaf: Bits.userReadOnly,
      access: Access(.write), cr0: GuestSetup.cr0 & ~(1 << 16), errorCode: nil),
  ]

  @Test(arguments: protectionCases)
  func protectionRules(_ rule: ProtectionCase) throws {
    var scenario = Scenario(.ept)
    scenario.cr0 = rule.cr0
    scenario.cr4 = rule.cr4
    scenario.rflags = rule.rflags
    scenario.map(Layout.data, to: Layout.dataFrame, bits: rule.leaf)
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    let expected: Outcome =
      rule.errorCode.map { .pageFault(errorCode: $0, linearAddress: Layout.data) }
      ?? .translated(hostPhysical: scenario.host(Layout.dataFrame))
    #expect(mmu.access(Layout.data, rule.access) == expected)
  }

  @Test func protectionKeysDenyDataAccessesAndSetPK() throws {
    var scenario = Scenario(.ept)
    scenario.cr4 = 0x20 | 1 << 22  // PKE
    scenario.map(Layout.data, to: Layout.dataFrame, bits: Bits.userData | 3 << 59)
    scenario.map(Layout.code, to: Layout.otherFrame, bits: Bits.userData | 3 << 59)
    scenario.pkru = 1 << 6 | 1 << 7  // key 3: AD and WD
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.data, Access(.read, user: true))
        == .pageFault(errorCode: 0b100101, linearAddress: Layout.data))
    #expect(
      mmu.access(Layout.code, Access(.fetch, user: true))
        == .translated(hostPhysical: scenario.host(Layout.otherFrame)))
  }

  @Test func aWriteDisabledKeyDeniesSupervisorWritesOnlyWithWP() throws {
    var scenario = Scenario(.none)
    scenario.cr4 = 0x20 | 1 << 22
    scenario.pkru = 1 << 3  // key 1: WD
    scenario.map(Layout.data, to: Layout.dataFrame, bits: Bits.userData | 1 << 59)
    let withWP = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      withWP.access(Layout.data, Access(.write))
        == .pageFault(errorCode: 0b100011, linearAddress: Layout.data))
    scenario.cr0 &= ~(1 << 16)
    let withoutWP = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      withoutWP.access(Layout.data, Access(.write)) == .translated(hostPhysical: Layout.dataFrame))
  }

  @Test func aSuccessfulWriteSetsAccessedEverywhereAndDirtyInTheLeaf() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame, bits: EntryBits.directory)
    let leaf = scenario.host(scenario.entry(Layout.data, level: 1))
    let top = scenario.host(scenario.entry(Layout.data, level: 4))
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    _ = mmu.access(Layout.data, Access(.write))
    #expect(mmu.hostWord(leaf) & (EntryBits.accessed | EntryBits.dirty) == 0x60)
    #expect(mmu.hostWord(top) & EntryBits.accessed != 0)
  }

  @Test func aFaultingWalkLeavesTheLeafUntouched() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame, bits: EntryBits.present | EntryBits.user)
    let leaf = scenario.host(scenario.entry(Layout.data, level: 1))
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(mmu.access(Layout.data, Access(.write, user: true)) != nil)
    #expect(mmu.hostWord(leaf) == Layout.dataFrame | EntryBits.present | EntryBits.user)
  }

  @Test func guestPagingOffTranslatesTheLinearAddressThroughEPTOnly() throws {
    var scenario = Scenario(.ept)
    scenario.map(Layout.data, to: Layout.dataFrame)
    scenario.cr0 = 0x11
    scenario.efer = 0
    let mmu = try NestedMMU(scenario.state, configuration: Self.uncached)
    #expect(
      mmu.access(Layout.dataFrame + 8)
        == .translated(hostPhysical: scenario.host(Layout.dataFrame) + 8))
    #expect(mmu.statistics.memoryReferences == 4)
  }
}
