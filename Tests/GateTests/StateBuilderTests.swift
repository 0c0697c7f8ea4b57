import Machine
import ReferenceModel
import Testing
import Workloads

@testable import Gate

/// How a spec becomes a state: registers, roots, where each table goes, what each entry holds.
@Suite struct StateBuilderTests {
  static func build(_ text: String) throws -> BuiltSpec { try buildSpec(text) }

  static func translate(
    _ built: BuiltSpec, _ gva: UInt64, _ kind: AccessKind, user: Bool = false
  ) throws -> Outcome {
    try ConcreteModel(built.state).translate(gva, Access(kind, user: user)).outcome
  }

  // MARK: - Registers and roots

  @Test(arguments: [
    ("4-level", UInt64(0x8001_0011), UInt64(0x20), UInt64(0xD00)),
    ("5-level", 0x8001_0011, 0x1020, 0xD00),
  ])
  func pagingModesGetTheUsualRegisters(_ mode: String, cr0: UInt64, cr4: UInt64, efer: UInt64)
    throws
  {
    let gva = mode == "5-level" ? "0x00ab_0000_0000_0000" : "0x7f0000000000"
    let built = try Self.build(
      minimalSpec.replacing("paging: 4-level", with: "paging: \(mode)")
        .replacing("gva: 0x7f0000000000", with: "gva: \(gva)"))
    #expect(built.state.guest.cr0 == cr0)
    #expect(built.state.guest.cr4 == cr4)
    #expect(built.state.guest.efer == efer)
    #expect(built.state.guest.cr3 == built.layout.guestTables.first?.guestPhysical)
  }

  @Test func guestPagingOffNeedsNoTables() throws {
    let built = try Self.build(
      """
      nestcheck-spec: 1
      name: off
      guest: { paging: off }
      nested: { kind: ept }
      host-mappings: [{ gpa: 0, hpa: 0x1_0000_0000, size: 2 MiB, page: 2 MiB, rights: [read] }]
      host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]
      properties: [isolation]
      expect: holds
      """)
    #expect(
      built.state.guest.cr0 == 0x11 && built.state.guest.cr4 == 0 && built.state.guest.efer == 0)
    #expect(built.layout.guestTables.isEmpty)
    #expect(try Self.translate(built, 0x1234, .read) == .translated(hostPhysical: 0x1_0000_1234))
  }

  @Test func thePCIDGoesIntoCR3() throws {
    let built = try Self.build(
      minimalSpec.replacing(
        "guest: { paging: 4-level }", with: "guest: { paging: 4-level, cr4: [PAE, PCIDE], pcid: 5 }"
      ))
    #expect(built.state.guest.cr3 == 0x1005)
  }

  @Test func theEPTPointerCarriesRootWalkLengthADAndMemoryType() throws {
    let built = try Self.build(
      minimalSpec.replacing("{ kind: ept }", with: "{ kind: ept, levels: 5, accessed-dirty: true }")
    )
    let root = try #require(built.layout.nestedTables.first)
    guard case .ept(let ept) = built.state.nested else {
      Issue.record("EPT")
      return
    }
    #expect(ept.eptp == root | 1 << 6 | 4 << 3 | 6)
    let uncached = try Self.build(
      minimalSpec.replacing("{ kind: ept }", with: "{ kind: ept, memory-type: uc }"))
    guard case .ept(let plain) = uncached.state.nested else { return }
    #expect(plain.eptp & 0x7F == 3 << 3 | 0)
  }

  @Test func nptTakesTheVendorAndTheHostMode() throws {
    let built = try Self.build(
      minimalSpec.replacing("{ kind: ept }", with: "{ kind: npt, levels: 5 }"))
    #expect(built.state.processor.vendor == .amd)
    guard case .npt(let npt) = built.state.nested else {
      Issue.record("NPT")
      return
    }
    #expect(npt.nCR3 == built.layout.nestedTables.first)
    #expect(npt.hostCR4 == 0x1020 && npt.hostEFER == 0xD00 && npt.physicalAddressBits == 48)
  }

  // MARK: - Placement

  @Test func guestTablesTakeTheLowestBackedFramesNotUsedByGuestPages() throws {
    let built = try Self.build(
      minimalSpec.replacing("gpa: 0x100000, rights", with: "gpa: 0x1000, size: 8 KiB, rights"))
    // Frames 0x1000 and 0x2000 hold the guest's data, so its four tables start at 0x3000.
    #expect(built.layout.guestTables.map(\.guestPhysical) == [0x3000, 0x4000, 0x5000, 0x6000])
    #expect(
      built.layout.guestTables.map(\.hostPhysical)
        == [0x3000, 0x4000, 0x5000, 0x6000].map { 0x1_0000_0000 + $0 })
  }

  @Test func aTableAreaPlacesTablesOneAfterAnother() throws {
    let built = try Self.build(
      minimalSpec.replacing("{ paging: 4-level }", with: "{ paging: 4-level, table-area: 0x80000 }")
        .replacing("{ kind: ept }", with: "{ kind: ept, table-area: 0x4000_0000 }"))
    #expect(built.layout.guestTables.map(\.guestPhysical) == [0x80000, 0x81000, 0x82000, 0x83000])
    #expect(built.layout.nestedTables == [0x4000_0000, 0x4000_1000, 0x4000_2000])
    #expect(built.state.guest.cr3 == 0x80000)
  }

  @Test func nestedTablesStayClearOfWhatTheHostMapsAndTheGuestsRanges() throws {
    let built = try Self.build(
      minimalSpec.replacing("hpa: 0x1_0000_0000", with: "hpa: 0x0")
        .replacing(
          "host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]",
          with: "host-ranges: [{ base: 0x0, size: 2 MiB }, { base: 0x200000, size: 4 KiB }]"))
    #expect(built.layout.nestedTables == [0x20_1000, 0x20_2000, 0x20_3000])
    #expect(
      try Self.translate(built, 0x7F00_0000_0010, .write) == .translated(hostPhysical: 0x10_0010))
  }

  @Test func aRawShadowsTablesGoAfterTheNestedOnes() throws {
    let built = try Self.build(
      minimalSpec.replacing(
        "properties: [isolation]",
        with:
          "shadow: { mappings: [{ gva: 0x7f0000000000, hpa: 0x1_0010_0000, rights: [user] }] }\n"
          + "properties: [isolation, soundness]"))
    #expect(built.layout.nestedTables == [0x1000, 0x2000, 0x3000])
    #expect(built.layout.shadowTables == [0x4000, 0x5000, 0x6000, 0x7000])
    #expect(built.state.shadow?.cr3 == 0x4000)
    #expect(built.state.shadow?.cr0 == built.state.guest.cr0 | 1 << 16)
    #expect(built.state.shadow?.efer == built.state.guest.efer | 1 << 11)
  }

  // MARK: - Entries

  @Test func guestLeavesCarryTheirRightsAndFlags() throws {
    let built = try Self.build(
      minimalSpec.replacing(
        "rights: [write, user] }",
        with: "rights: [write, user], accessed: true, dirty: true, global: true, key: 3 }"))
    let pt = try #require(built.layout.guestTables.last)
    let leaf = built.state.memory[pt.hostPhysical]  // gva 0x7f0000000000 is entry 0
    #expect(leaf == UInt64(3) << 59 | 1 << 63 | 0x10_0000 | 0x100 | 0x40 | 0x20 | 0x7)
    // Directories: P, R/W, U/S, and A because a mapping below was accessed.
    let root = try #require(built.layout.guestTables.first)
    #expect(built.state.memory[root.hostPhysical + 8 * 254] & 0xFFF == 0x27)
  }

  @Test func eptAndNPTLeavesUseTheirOwnFormats() throws {
    let ept = try Self.build(
      minimalSpec.replacing(
        "rights: [read, write, exec] }",
        with: "rights: [read, exec], memory-type: uc, accessed: true }"))
    let pdEPT = ept.layout.nestedTables[2]
    #expect(ept.state.memory[pdEPT] == 0x1_0000_0000 | 1 << 8 | 1 << 7 | 0 << 3 | 0x5)

    let npt = try Self.build(
      minimalSpec.replacing("{ kind: ept }", with: "{ kind: npt }")
        .replacing("rights: [read, write, exec] }", with: "rights: [read] }"))
    let pdNPT = npt.layout.nestedTables[2]
    #expect(npt.state.memory[pdNPT] == UInt64(0x1_0000_0000) | 1 << 63 | 1 << 7 | 0x5)
    #expect(npt.state.memory[npt.layout.nestedTables[0]] & 0xFFF == 0x7)
  }

  @Test func aSelfMapShowsTheRootAtTheTopOfTheAddressSpace() throws {
    let built = try #require(SpecLibraryTests.named("self-map"))
    let root = try #require(built.layout.guestTables.first)
    #expect(
      try Self.translate(built, 0xFFFF_FFFF_FFFF_F008, .read)
        == .translated(hostPhysical: root.hostPhysical + 8))
    #expect(
      try Self.translate(built, 0xFFFF_FFFF_FFFF_F000, .read, user: true)
        != .translated(hostPhysical: root.hostPhysical))
  }

  @Test func anAliasedTableIsReachedThroughBothPathsWithEachPathsRights() throws {
    let built = try #require(SpecLibraryTests.named("aliased-tables"))
    #expect(
      try Self.translate(built, 0x7F00_0020_1000, .read, user: true)
        == .translated(hostPhysical: 0x1_0010_1000))
    #expect(
      try Self.translate(built, 0x7F00_0000_1000, .write, user: true)
        == .translated(hostPhysical: 0x1_0010_1000))
    #expect(
      try Self.translate(built, 0x7F00_0020_1000, .write, user: true)
        == .pageFault(errorCode: 0x7, linearAddress: 0x7F00_0020_1000))
  }

  @Test func aRawEntryMayChangeADirectorysBitsWhenItKeepsItsTable() throws {
    let built = try Self.build(
      minimalSpec.replacing(
        "properties:",
        with:
          "raw-entries: [{ table: guest, gva: 0x7f0000000000, level: 2, value: 0x8000000000000007, "
          + "points-to: { gva: 0x7f0000000000, level: 1 } }]\nproperties:"
      ).replacing("rights: [write, user] }", with: "rights: [write, user, exec] }"))
    #expect(
      try Self.translate(built, 0x7F00_0000_0000, .read, user: true)
        == .translated(hostPhysical: 0x1_0010_0000))
    // XD in the PDE now forbids fetches the leaf alone would allow.
    #expect(
      try Self.translate(built, 0x7F00_0000_0000, .fetch, user: true)
        == .pageFault(errorCode: 0x15, linearAddress: 0x7F00_0000_0000))
  }

  @Test func rawEntriesWriteReservedBitsWhereNoMappingIs() throws {
    let built = try Self.build(
      minimalSpec.replacing(
        "properties:",
        with:
          "raw-entries: [{ table: guest, gva: 0x7f0000001000, level: 1, value: 0x0008000000101007 }]\nproperties:"
      ))
    #expect(
      try Self.translate(built, 0x7F00_0000_1000, .read)
        == .pageFault(errorCode: 0x9, linearAddress: 0x7F00_0000_1000))
  }

  // MARK: - Limits

  @Test func aLargeSpecBuildsAndTranslatesEveryPage() throws {
    let built = try Self.build(
      minimalSpec.replacing("gpa: 0x100000, rights", with: "gpa: 0x10_0000, size: 64 MiB, rights")
        .replacing("size: 2 MiB, page: 2 MiB", with: "size: 128 MiB, page: 2 MiB")
        .replacing(
          "host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]",
          with: "host-ranges: [{ base: 0x1_0000_0000, size: 128 MiB }]"))
    // A PML4, a PDPT, a PD and 32 page tables.
    #expect(built.layout.guestTables.count == 3 + 32)
    let model = try ConcreteModel(built.state)
    for page in stride(from: UInt64(0), to: 16384, by: 1021) {
      #expect(
        model.translate(0x7F00_0000_0000 + page << 12, Access(.read)).outcome
          == .translated(hostPhysical: 0x1_0010_0000 + page << 12))
    }
  }

  @Test func tooManyPagesAreRefused() {
    let text = minimalSpec.replacing(
      "gpa: 0x100000, rights", with: "gpa: 0x100000, size: 32 GiB, rights")
    #expect(
      specError(text)
        == "t.yaml:6:5: guest-mappings[0]: the spec maps more than 4194304 pages; use larger pages or fewer mappings"
    )
  }
}
