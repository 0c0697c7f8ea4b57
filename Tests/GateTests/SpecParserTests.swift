import FastMMU
import Machine
import Testing

@testable import Gate

/// What a well-formed spec means: defaults, spellings, and the trace vocabulary of the
/// fast-MMU shadow form.
@Suite struct SpecParserTests {
  static func parse(_ text: String) throws -> Spec {
    try Spec.parse(yaml: text, file: "t.yaml")
  }

  @Test func theMinimalSpecGetsTheDocumentedDefaults() throws {
    let spec = try Self.parse(minimalSpec)
    #expect(spec.name == "t")
    #expect(spec.description == "")
    #expect(spec.processor.vendor == nil)
    #expect(spec.processor.physicalAddressBits == 46)
    #expect(spec.processor.gigabytePages)
    #expect(spec.guest.cr0 == nil && spec.guest.cr4 == nil && spec.guest.efer == nil)
    #expect(spec.guest.rflags == 0x2)
    guard case .ept(let ept) = spec.nested else {
      Issue.record("nested is EPT")
      return
    }
    #expect(ept.levels == 4)
    #expect(!ept.accessedDirty && ept.executeOnly && ept.gigabytePages && !ept.modeBasedExecute)
    #expect(ept.physicalAddressBits == 46)
    #expect(ept.pagingStructureType == .wb)
    let mapping = try #require(spec.guestMappings.first)
    #expect(mapping.page == .small && mapping.size == 0x1000)
    #expect(!mapping.accessed && !mapping.dirty && !mapping.global && mapping.key == 0)
    #expect(mapping.backed == nil)
    #expect(spec.hostMappings.first?.memoryType == .wb)
    #expect(spec.properties == [.isolation])
    #expect(spec.expectation == .holds)
    #expect(spec.fuzz == nil)
    #expect(spec.proofBudget == ProofBudget())
  }

  @Test func registersReadAsBitNamesOrNumbers() throws {
    let named = try Self.parse(
      minimalSpec.replacing(
        "guest: { paging: 4-level }",
        with: "guest: { paging: 4-level, cr0: [PE, ET, WP, PG], cr4: [pae, SMEP, smap], "
          + "efer: [LME, LMA, NXE], rflags: [AC] }"))
    let numbered = try Self.parse(
      minimalSpec.replacing(
        "guest: { paging: 4-level }",
        with: "guest: { paging: 4-level, cr0: 0x80010011, cr4: 0x300020, efer: 0xd00, "
          + "rflags: 0x40002 }"))
    #expect(named.guest.cr0 == 0x8001_0011)
    #expect(named.guest.cr4 == 0x30_0020)
    #expect(named.guest.efer == 0xD00)
    #expect(named.guest.rflags == 0x4_0002)
    #expect(
      [named.guest.cr0, named.guest.cr4, named.guest.efer, named.guest.rflags]
        == [numbered.guest.cr0, numbered.guest.cr4, numbered.guest.efer, numbered.guest.rflags])
  }

  @Test func blockAndFlowStylesCommentsQuotesAndAliasesMeanTheSame() throws {
    let block = try Self.parse(
      """
      # A comment.
      nestcheck-spec: 1
      name: t
      guest:
        paging: 4-level   # the default registers
      nested:
        kind: ept
      guest-mappings:
        - gva: "0x7f00_0000_0000"
          gpa: 1048576
          rights: &rw
            - write
            - user
      host-mappings:
        - gpa: 0
          hpa: 0x1_0000_0000
          size: 2MiB
          page: '2 MiB'
          rights: [read, write, exec]
      host-ranges:
        - base: 0x100000000
          size: 0x200000
      properties:
        - isolation
      expect: holds
      """)
    let flow = try Self.parse(minimalSpec)
    #expect(block.guestMappings.map(\.gva) == flow.guestMappings.map(\.gva))
    #expect(block.guestMappings.map(\.gpa) == flow.guestMappings.map(\.gpa))
    #expect(block.guestMappings.map(\.rights) == flow.guestMappings.map(\.rights))
    #expect(block.hostMappings.map(\.size) == flow.hostMappings.map(\.size))
    #expect(block.hostMappings.map(\.page) == flow.hostMappings.map(\.page))
    #expect(block.hostRanges.map(\.value) == flow.hostRanges.map(\.value))
    #expect(try block.build().state == flow.build().state)
  }

  @Test func theExpectedVerdictNamesOneCheckOrSeveral() throws {
    let shadowed = minimalSpec.replacing(
      "properties: [isolation]",
      with: "shadow: { mappings: [] }\nproperties: [isolation, soundness]")
    let one = try Self.parse(
      shadowed.replacing("expect: holds", with: "expect: { violated: soundness }"))
    #expect(one.expectation == .violated(["soundness"]))
    let two = try Self.parse(
      shadowed.replacing("expect: holds", with: "expect:\n  violated: [soundness, isolation]"))
    #expect(two.expectation == .violated(["soundness", "isolation"]))
    #expect(try two.build().checks.map(\.expected) == [.violated, .violated])
    #expect(try one.build().checks.map(\.expected) == [.holds, .violated])
  }

  @Test func budgetsReadDurationsAndCounts() throws {
    let spec = try Self.parse(
      minimalSpec.replacing(
        "properties: [isolation]",
        with: """
          properties: [isolation]
          proof-budget: { time: 2 min, resource-limit: 5_000_000 }
          fuzz: { modes: [nested, paravirtual], operations: 100000, time-budget: 30 s }
          """))
    #expect(spec.proofBudget == ProofBudget(time: .seconds(120), resourceLimit: 5_000_000))
    #expect(spec.fuzz?.modes == [.nested, .paravirtual])
    #expect(spec.fuzz?.budget == FuzzBudget(seed: 1, operations: 100_000, time: .seconds(30)))
    #expect(spec.checkNames == ["isolation", "fuzz-nested", "fuzz-paravirtual"])
  }

  @Test func fastMMUOperationsAreTheTraceVocabulary() throws {
    let spec = try Self.parse(
      minimalSpec.replacing(
        "properties: [isolation]",
        with: """
          shadow:
            built-by: fast-mmu
            mode: shadow
            write-policy: emulate
            operations:
              - { op: access, address: 0x7f0000000000, kind: write, user: true }
              - { op: access, address: 0x7f0000000000, kind: read, implicit: true }
              - { op: write-guest, address: 0x4000, value: 0x8000000000100007 }
              - { op: write-host, address: 0x3000, value: 0 }
              - { op: write-register, register: cr3, value: 0x1000 }
              - { op: invlpg, address: 0x7f0000000000 }
              - { op: invpcid, type: single-context, pcid: 0 }
              - { op: invept, type: all-contexts }
              - { op: invvpid, type: individual-address, vpid: 1, address: 0x7f0000000000 }
              - op: paravirtual-batch
                updates:
                  - { entry: 0x4008, value: 0x101007 }
                  - { entry: 0x4010, value: 0x102005, preserveAccessedDirty: true }
          properties: [isolation, soundness]
          """))
    guard case .fastMMU(let recipe) = spec.shadow else {
      Issue.record("the shadow is built by the fast MMU")
      return
    }
    #expect(recipe.value.mode == .shadow)
    #expect(recipe.value.writePolicy == .emulate)
    #expect(
      recipe.value.operations == [
        .access(linearAddress: 0x7F00_0000_0000, Access(.write, user: true)),
        .access(linearAddress: 0x7F00_0000_0000, Access(.read, implicit: true)),
        .writeGuest(guestPhysical: 0x4000, value: 0x8000_0000_0010_0007),
        .writeHost(hostPhysical: 0x3000, value: 0),
        .writeRegister(.cr3, value: 0x1000),
        .invlpg(linearAddress: 0x7F00_0000_0000),
        .invpcid(.singleContext, pcid: 0, linearAddress: 0),
        .invept(.allContexts, eptp: 0),
        .invvpid(.individualAddress, vpid: 1, linearAddress: 0x7F00_0000_0000),
        .paravirtualBatch([
          PageTableUpdate(entry: 0x4008, value: 0x10_1007),
          PageTableUpdate(entry: 0x4010, value: 0x10_2005, preserveAccessedDirty: true),
        ]),
      ])
    let built = try spec.build()
    #expect(built.state.shadow == nil)
    #expect(built.shadowRecipe?.operations.count == 10)
  }

  @Test func aRawShadowNamesUnsyncTablesByAddressOrWalk() throws {
    let spec = try Self.parse(
      minimalSpec.replacing(
        "guest: { paging: 4-level }", with: "guest: { paging: 4-level, table-area: 0x10000 }"
      ).replacing(
        "properties: [isolation]",
        with: """
          shadow:
            mappings: [{ gva: 0x7f0000000000, hpa: 0x1_0010_0000, rights: [write, user] }]
            unsync: [0x12000, { gva: 0x7f0000000000 }]
            cr0: [PE, PG, WP]
          properties: [isolation, page-table-protection]
          """))
    let built = try spec.build()
    #expect(built.state.shadow?.unsyncTables == [0x12, 0x13])
    #expect(built.state.shadow?.cr0 == 0x8001_0001)
    #expect(built.state.shadow?.efer == 0xD00)
  }
}

extension SpecParserTests {
  @Test func aFoldedDescriptionLosesItsFinalLineBreak() throws {
    let spec = try Self.parse(
      minimalSpec.replacing("name: t\n", with: "name: t\ndescription: >\n  Two\n  lines.\n"))
    #expect(spec.description == "Two lines.")
  }
}
