import Machine
import Testing

@testable import Gate

/// A spec that must be refused, and the line the refusal prints.
struct BadSpec: CustomTestStringConvertible, Sendable {
  /// What is wrong, for the test's name.
  let what: String
  /// The spec text.
  let text: String
  /// The whole error line (`t.yaml:LINE:COLUMN: FIELD: MESSAGE`), or its beginning when the
  /// message ends in a long list.
  let expected: String
  let prefixOnly: Bool

  /// `minimalSpec` with `old` replaced by `new`.
  init(
    _ what: String, replacing old: String, with new: String, _ expected: String,
    prefix: Bool = false
  ) {
    self.what = what
    precondition(minimalSpec.contains(old), "the case edits text the minimal spec has: \(old)")
    text = minimalSpec.replacing(old, with: new)
    self.expected = expected
    prefixOnly = prefix
  }

  /// A whole spec text.
  init(_ what: String, text: String, _ expected: String, prefix: Bool = false) {
    self.what = what
    self.text = text
    self.expected = expected
    prefixOnly = prefix
  }

  var testDescription: String { what }
}

/// Line 6 of the minimal spec, the guest mapping, and line 8, the host mapping.
let guestLine = "  - { gva: 0x7f0000000000, gpa: 0x100000, rights: [write, user] }"
let hostLine =
  "  - { gpa: 0x0, hpa: 0x1_0000_0000, size: 2 MiB, page: 2 MiB, rights: [read, write, exec] }"

/// Every way a spec is refused names the file, the line and column, and the field — the
/// table of docs/spec-format.md, "what is refused".
@Suite struct BadSpecTests {
  static let cases: [BadSpec] = [
    // The document.
    BadSpec(
      "an empty document", text: "", "t.yaml: empty document (a spec starts with nestcheck-spec: 1)"
    ),
    BadSpec(
      "malformed YAML", text: "nestcheck-spec: 1\nname: [t\n",
      "t.yaml:3:1: malformed YAML: did not find expected ',' or ']'"),
    BadSpec(
      "not a mapping", text: "- nestcheck-spec: 1\n",
      "t.yaml:1:1: a spec is a mapping of fields, starting with nestcheck-spec: 1"),
    BadSpec(
      "no version", replacing: "nestcheck-spec: 1\n", with: "",
      "t.yaml:1:1: missing field \"nestcheck-spec\" (a spec starts with nestcheck-spec: 1)"),
    BadSpec(
      "another version", replacing: "nestcheck-spec: 1", with: "nestcheck-spec: 2",
      "t.yaml:1:17: nestcheck-spec: unknown spec format version 2; this nestcheck reads version 1"),
    BadSpec(
      "a key given twice", replacing: "rights: [write, user] }",
      with: "rights: [write, user], gva: 0x1000 }",
      "t.yaml:6:7: gva: field given twice in one mapping (the first is here)"),

    // Unknown keys, never ignored.
    BadSpec(
      "an unknown top-level key", replacing: "guest: {", with: "guests: {",
      "t.yaml:3:1: guests: unknown field (did you mean \"guest\"? expected one of: ",
      prefix: true),
    BadSpec(
      "an unknown key in a mapping", replacing: "gpa: 0x100000", with: "gpaa: 0x100000",
      "t.yaml:6:28: guest-mappings[0].gpaa: unknown field (did you mean \"gpa\"? expected one "
        + "of: accessed, backed, dirty, global, gpa, gva, key, page, rights, size)"),
    BadSpec(
      "an unknown key in the nested section", replacing: "{ kind: ept }",
      with: "{ kind: ept, ad: true }",
      "t.yaml:4:22: nested.ad: unknown field (expected one of: ", prefix: true),
    BadSpec(
      "a nested section without its kind", replacing: "{ kind: ept }", with: "{ levels: 5 }",
      "t.yaml:4:9: nested: missing field \"kind\" (none, ept or npt)"),
    BadSpec(
      "an unknown key in a trace operation",
      replacing: "properties: [isolation]",
      with: """
        shadow:
          built-by: fast-mmu
          mode: shadow
          operations: [{ op: access, adress: 0x7f0000000000, kind: read }]
        properties: [isolation]
        """,
      "t.yaml:13:38: shadow.operations[0].adress: unknown field (expected one of: address, "
        + "implicit, kind, op, user)"),

    // Wrong types and values.
    BadSpec(
      "a list for a number", replacing: "gva: 0x7f0000000000", with: "gva: [1]",
      "t.yaml:6:12: guest-mappings[0].gva: expected a value, got a list"),
    BadSpec(
      "a number that is not one", replacing: "gpa: 0x100000", with: "gpa: 0x10g000",
      "t.yaml:6:33: guest-mappings[0].gpa: expected a number such as 0x1000 or 4096, got "
        + "\"0x10g000\""),
    BadSpec(
      "a number wider than 64 bits", replacing: "hpa: 0x1_0000_0000",
      with: "hpa: 0x1_0000_0000_0000_0000",
      "t.yaml:8:22: host-mappings[0].hpa: value 0x1_0000_0000_0000_0000 is wider than 64 bits"),
    BadSpec(
      "a negative size", replacing: "size: 2 MiB, page", with: "size: -4096, page",
      "t.yaml:8:43: host-mappings[0].size: expected a size, got -4096"),
    BadSpec(
      "a decimal size unit", replacing: "size: 2 MiB, page", with: "size: 2 MB, page",
      "t.yaml:8:43: host-mappings[0].size: expected a size such as 4096, 16 KiB, 2 MiB or 1 GiB "
        + "(units: B, KiB, MiB, GiB, TiB), got \"2 MB\""),
    BadSpec(
      "a page size that does not exist", replacing: "page: 2 MiB", with: "page: 8 KiB",
      "t.yaml:8:56: host-mappings[0].page: a page is 4 KiB, 2 MiB or 1 GiB, not 8 KiB"),
    BadSpec(
      "yes for a Boolean", replacing: "rights: [write, user] }",
      with: "rights: [write, user], accessed: yes }",
      "t.yaml:6:76: guest-mappings[0].accessed: expected true or false, got \"yes\""),
    BadSpec(
      "an unknown right", replacing: "rights: [write, user]", with: "rights: [write, usr]",
      "t.yaml:6:59: guest-mappings[0].rights[1]: unknown right \"usr\" (did you mean \"user\"? "
        + "expected one of: read, write, user, exec)"),
    BadSpec(
      "a right given twice", replacing: "rights: [write, user]", with: "rights: [write, write]",
      "t.yaml:6:59: guest-mappings[0].rights[1]: write is listed twice"),
    BadSpec(
      "an unknown register bit", replacing: "guest: { paging: 4-level }",
      with: "guest: { paging: 4-level, cr4: [PAE, SMEPP] }",
      "t.yaml:3:38: guest.cr4[1]: unknown cr4 bit \"SMEPP\" (did you mean \"SMEP\"? expected one "
        + "of: ", prefix: true),
    BadSpec(
      "an unknown nested kind", replacing: "kind: ept", with: "kind: svm",
      "t.yaml:4:17: nested.kind: unknown value \"svm\" (expected one of: none, ept, npt)"),
    BadSpec(
      "a bad spec name", replacing: "name: t", with: "name: my spec",
      "t.yaml:2:7: name: \"my spec\" is not a spec name: use letters, digits, '-', '_' and '.', "
        + "starting with a letter or digit, at most 100 characters"),
    BadSpec(
      "a PKRU wider than 32 bits", replacing: "guest: { paging: 4-level }",
      with: "guest: { paging: 4-level, cr4: [PAE, PKE], pkru: 0x1_0000_0000 }",
      "t.yaml:3:50: guest.pkru: a 32-bit register; 0x100000000 is wider"),

    // Alignment, canonical form, widths.
    BadSpec(
      "an unaligned gva", replacing: "gva: 0x7f0000000000", with: "gva: 0x7f0000000800",
      "t.yaml:6:12: guest-mappings[0].gva: 0x7f0000000800 is not aligned to its 4 KiB page"),
    BadSpec(
      "a size that is not a page multiple", replacing: "size: 2 MiB, page",
      with: "size: 3 MiB, page",
      "t.yaml:8:43: host-mappings[0].size: 3 MiB is not a whole number of 2 MiB pages"),
    BadSpec(
      "a non-canonical gva", replacing: "gva: 0x7f0000000000", with: "gva: 0x800000000000",
      "t.yaml:6:12: guest-mappings[0].gva: 0x800000000000 is not canonical for 4-level paging "
        + "(bits 63:47 must all be equal)"),
    BadSpec(
      "a mapping running out of the canonical range", replacing: "gva: 0x7f0000000000",
      with: "gva: 0x7ffffffff000, size: 8 KiB",
      "t.yaml:6:12: guest-mappings[0].gva: the mapping runs to 0x800000000fff, out of the "
        + "canonical range of 4-level paging"),
    BadSpec(
      "a gpa beyond MAXPHYADDR", replacing: "gpa: 0x100000", with: "gpa: 0x4000_0000_0000",
      "t.yaml:6:33: guest-mappings[0].gpa: the mapping reaches past MAXPHYADDR (46 bits, "
        + "processor.physical-address-bits): a guest entry cannot hold that frame (use "
        + "raw-entries for a reserved-bit fault)"),

    // Overlapping and contradictory mappings.
    BadSpec(
      "overlapping guest mappings", replacing: guestLine,
      with: guestLine + "\n  - { gva: 0x7f0000000000, gpa: 0x101000, rights: [user] }",
      "t.yaml:7:12: guest-mappings[1].gva: overlaps guest-mappings[0] (gva "
        + "0x7f0000000000–0x7f0000000fff)"),
    BadSpec(
      "overlapping host mappings", replacing: hostLine,
      with: hostLine + "\n  - { gpa: 0x1ff000, hpa: 0x2_0000_0000, rights: [read] }",
      "t.yaml:9:12: host-mappings[1].gpa: overlaps host-mappings[0] (gpa 0x0–0x1fffff)"),
    BadSpec(
      "overlapping host ranges", replacing: "host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]",
      with:
        "host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }, { base: 0x1_0010_0000, size: 4 KiB }]",
      "t.yaml:9:53: host-ranges[1]: overlaps host-ranges[0] (0x100000000–0x1001fffff)"),
    BadSpec(
      "a guest page the host does not back", replacing: "gpa: 0x100000", with: "gpa: 0x400000",
      "t.yaml:6:33: guest-mappings[0].gpa: guest physical 0x400000 is not mapped by "
        + "host-mappings: the nested dimension does not back it (map it, or write backed: false "
        + "if that is the point)"),
    BadSpec(
      "backed: false over backed memory", replacing: "rights: [write, user] }",
      with: "rights: [write, user], backed: false }",
      "t.yaml:6:74: guest-mappings[0].backed: backed: false, but host-mappings map guest "
        + "physical 0x100000"),
    BadSpec(
      "XD without EFER.NXE", replacing: "guest: { paging: 4-level }",
      with: "guest: { paging: 4-level, efer: [LME, LMA] }",
      "t.yaml:6:51: guest-mappings[0].rights: without exec the entry needs XD, but the guest's "
        + "EFER.NXE is off (XD would be a reserved bit): add exec, or NXE to guest.efer"),
    BadSpec(
      "an EPT write without read", replacing: "rights: [read, write, exec]",
      with: "rights: [write]",
      "t.yaml:8:71: host-mappings[0].rights: write without read is an EPT misconfiguration "
        + "(SEMANTICS §2.3 M1); use raw-entries for a deliberate one"),
    BadSpec(
      "execute-only without the capability",
      text: minimalSpec.replacing("{ kind: ept }", with: "{ kind: ept, execute-only: false }")
        .replacing(
          hostLine, with: hostLine + "\n  - { gpa: 0x200000, hpa: 0x2_0000_0000, rights: [exec] }"),
      "t.yaml:9:50: host-mappings[1].rights: execute-only needs nested.execute-only: true; "
        + "without it XWR = 100 is a misconfiguration (SEMANTICS §2.3 M2)"),
    BadSpec(
      "host mappings without nested paging", replacing: "{ kind: ept }",
      with: "{ kind: none }",
      "t.yaml:8:5: host-mappings[0]: host mappings need nested paging (nested.kind is none)"),
    BadSpec(
      "EPT on an AMD processor", replacing: "nested: { kind: ept }",
      with: "processor: { vendor: amd }\nnested: { kind: ept }",
      "t.yaml:4:12: processor: EPT is Intel's; processor.vendor is amd"),
    BadSpec(
      "5-level paging without LA57", replacing: "guest: { paging: 4-level }",
      with: "guest: { paging: 5-level, cr4: [PAE] }",
      "t.yaml:3:32: guest.cr4: 5-level paging needs CR4.LA57"),

    // Raw entries.
    BadSpec(
      "a raw entry replacing a mapping's leaf", replacing: "properties:",
      with: "raw-entries: [{ table: guest, gva: 0x7f0000000000, level: 1, value: 0x7 }]\n"
        + "properties:",
      "t.yaml:10:15: raw-entries[0]: it would replace the guest PTE that guest-mappings[0] "
        + "writes; a raw entry may not change a mapping (leave that page out of the mapping "
        + "instead)"),
    BadSpec(
      "a raw entry under a large leaf", replacing: "properties:",
      with: "raw-entries: [{ table: nested, gpa: 0x1000, level: 1, value: 0x7 }]\nproperties:",
      "t.yaml:10:15: raw-entries[0]: it lies under the nested PDE leaf that host-mappings[0] "
        + "writes"),
    BadSpec(
      "a raw entry with points-to and an address", replacing: "properties:",
      with: "raw-entries: [{ table: guest, gva: 0x7f0000200000, level: 2, value: 0x5007, "
        + "points-to: root }]\nproperties:",
      "t.yaml:10:69: raw-entries[0].value: with points-to the builder fills in the address "
        + "(bits 51:12); give only the other bits here"),
    BadSpec(
      "a raw entry pointing to a missing table", replacing: "properties:",
      with: "raw-entries: [{ table: guest, gva: 0x7f0000200000, level: 2, value: 0x7, "
        + "points-to: { gva: 0x100000, level: 1 } }]\nproperties:",
      "t.yaml:10:85: raw-entries[0].points-to: no level-1 guest table lies on the walk of "
        + "0x100000 (nothing maps that far)"),
    BadSpec(
      "a raw nested entry named by gva", replacing: "properties:",
      with: "raw-entries: [{ table: nested, gva: 0x1000, level: 1, value: 0x7 }]\nproperties:",
      "t.yaml:10:37: raw-entries[0].gva: a nested table entry is named by gpa, not gva"),

    // Placement.
    BadSpec(
      "a guest table area the host does not back", replacing: "paging: 4-level }",
      with: "paging: 4-level, table-area: 0x800000 }",
      "t.yaml:3:39: guest.table-area: the guest table at guest physical 0x800000 is not backed "
        + "by host-mappings: the guest's tables must live in host memory"),
    BadSpec(
      "nested tables placed on the guest's tables", replacing: "{ kind: ept }",
      with: "{ kind: ept, table-area: 0x1_0000_1000 }",
      "t.yaml:4:34: nested.table-area: a nested table and the guest table at guest physical "
        + "0x1000 would share host physical 0x100001000; move a table area or a mapping"),

    // Checks and the expected verdict.
    BadSpec(
      "no expected verdict", replacing: "expect: holds\n", with: "",
      "t.yaml:1:1: missing field \"expect\""),
    BadSpec(
      "an expected verdict that is neither", replacing: "expect: holds", with: "expect: passes",
      "t.yaml:11:9: expect: expected holds, or { violated: CHECK } naming the check that must "
        + "fail, got \"passes\""),
    BadSpec(
      "a violated check the spec does not run", replacing: "expect: holds",
      with: "expect: { violated: soundness }",
      "t.yaml:11:21: expect.violated: soundness is not a check of this spec (its checks: "
        + "isolation)"),
    BadSpec(
      "nothing to check", replacing: "properties: [isolation]", with: "properties: []",
      "t.yaml:11:9: expect: the spec checks nothing: give properties to prove, or a fuzz "
        + "campaign"),
    BadSpec(
      "soundness without a shadow", replacing: "properties: [isolation]",
      with: "properties: [isolation, soundness]",
      "t.yaml:10:25: properties[1]: soundness is about a shadow, and this spec has none (add "
        + "shadow:)"),
    BadSpec(
      "isolation without host ranges",
      replacing: "host-ranges: [{ base: 0x1_0000_0000, size: 2 MiB }]\n", with: "",
      "t.yaml:9:14: properties[0]: isolation needs host-ranges: the host memory the guest may "
        + "reach"),
    BadSpec(
      "a shadow built in the nested mode", replacing: "properties: [isolation]",
      with: "shadow: { built-by: fast-mmu, mode: nested }\nproperties: [isolation]",
      "t.yaml:10:37: shadow.mode: the nested mode keeps no shadow tables; build with shadow or "
        + "paravirtual (fuzz: { modes: [nested] } checks the nested mode)"),
    BadSpec(
      "an unsync entry that is not a table", replacing: "properties: [isolation]",
      with: "shadow: { mappings: [], unsync: [0x100000] }\nproperties: [isolation]",
      "t.yaml:10:34: shadow.unsync[0]: guest physical 0x100000 is not a guest page table (they "
        + "are at 0x1000, 0x2000, 0x3000, 0x4000)"),
    BadSpec(
      "aliases that expand an operation without bound",
      replacing: "properties: [isolation]",
      with: """
        shadow:
          built-by: fast-mmu
          mode: shadow
          operations:
            - { op: invlpg, address: 0x1000, bomb: [&d [&c [&b [&a [1, 1, 1, 1, 1, 1, 1, 1],
                *a, *a, *a, *a, *a, *a, *a], *b, *b, *b, *b, *b, *b, *b], *c, *c, *c, *c, *c,
                *c, *c], *d, *d, *d, *d, *d, *d, *d] }
        properties: [isolation]
        """,
      "t.yaml:14:7: shadow.operations[0]: more than 10000 values in one element (do aliases "
        + "expand it?)"),
    BadSpec(
      "a resource limit Z3 cannot take", replacing: "properties: [isolation]",
      with: "properties: [isolation]\nproof-budget: { resource-limit: 0x1_0000_0000 }",
      "t.yaml:11:33: proof-budget.resource-limit: Z3's resource limit is a number from 1 to "
        + "4294967295"),
    BadSpec(
      "a fuzz campaign of no operations", replacing: "properties: [isolation]",
      with: "properties: [isolation]\nfuzz: { modes: [nested], operations: 0 }",
      "t.yaml:11:38: fuzz.operations: zero operations: nothing to fuzz"),
  ]

  @Test(arguments: cases)
  func isRefusedWithPositionAndField(_ bad: BadSpec) {
    let message = specError(bad.text)
    if bad.prefixOnly {
      #expect(message?.hasPrefix(bad.expected) == true, "got: \(message ?? "no error")")
    } else {
      #expect(message == bad.expected)
    }
  }

  @Test func theMinimalSpecIsAccepted() {
    #expect(specError(minimalSpec) == nil)
  }

  @Test func everyCaseEditsTheMinimalSpecIntoSomethingElse() {
    #expect(Self.cases.allSatisfy { $0.text != minimalSpec })
    #expect(Set(Self.cases.map(\.what)).count == Self.cases.count)
  }
}
