import Machine
import Testing

@testable import Oracle

/// A guest table that maps itself is read at two levels of one walk, and the two reads may see
/// two values: the upper one kept by a paging-structure cache, the lower one read from memory
/// now (SEMANTICS §6.1; docs/fuzzing.md, "how the oracle decides"). Found by the nested
/// campaign (seed 55, episode 509), shrunk to four operations.
@Suite struct SelfMappingTableTests {
  /// A 4-level guest without nested paging: linear 0x139d_0000_0000 goes through the PML4
  /// entry at 0x1138 and the PDPT entry at 0x23a0 to the page directory at 0x3000, whose
  /// entry 0 is the word 0x3000 itself; PTE 3 of that table, at 0x3018, maps page 0x4000.
  static let state = """
    {"format": "nestcheck-state", "version": 1,
     "processor": {"vendor": "amd", "physicalAddressBits": 46, "gigabytePages": false},
     "guest": {"cr0": "0x80000011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00",
               "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
     "nested": {"kind": "none"},
     "memory": {"0x1138": "0x2007", "0x23a0": "0x3007", "0x3018": "0x4007"}}
    """

  /// The directory entry is pointed at its own table; a read through PTE 3 caches it; it is
  /// pointed at table 0 without a flush; the read through PTE 0 — the directory entry's own
  /// word — may use the cached directory entry and then read the word's new value as the PTE.
  static let trace: [TraceOperation] = [
    .writeGuest(guestPhysical: 0x3000, value: 0x3005),
    .access(linearAddress: 0x139d_0000_3000, Access(.read)),
    .writeGuest(guestPhysical: 0x3000, value: 0x5),
    .access(linearAddress: 0x139d_0000_0000, Access(.read)),
  ]

  @Test func theCachedUpperReadAndTheFreshLowerReadOfOneWordExplainTheTranslation() throws {
    let state = try MachineState.load(json: Self.state)
    let oracle = try Oracle(mode: .nested, state: state)
    let target = FastMMUTarget(mode: .nested)
    try target.reset(to: state)
    var last: TraceResult? = nil
    for (index, operation) in Self.trace.enumerated() {
      let observed = try target.apply(operation)
      last = observed.result
      #expect(oracle.check(operation, observed) == .agrees, "operation \(index)")
    }
    #expect(last == .outcome(.translated(hostPhysical: 0)), "the PTE read is the new value")
    var exported = try #require(target.exportState())
    #expect(oracle.compareMemory(exported) == nil)
    // The translation set A in the word as a PTE, read now; a target that did not is wrong.
    exported.memory[0x3000] = 0x5
    #expect(oracle.compareMemory(exported)?.hostPhysical == 0x3000, "the PTE's A is known")
  }

  /// Neither read may see a value the word did not hold: page 0x4000 is mapped by PTE 3 only.
  @Test func aPageNoReadOfTheWordMapsIsStillRefused() throws {
    let oracle = try Oracle(mode: .nested, state: MachineState.load(json: Self.state))
    let results: [TraceResult] = [
      .completed, .outcome(.translated(hostPhysical: 0x4000)), .completed,
      .outcome(.translated(hostPhysical: 0x4000)),
    ]
    for (index, (operation, result)) in zip(Self.trace, results).enumerated() {
      let judgement = oracle.check(operation, TraceObservation(result))
      #expect((judgement == .agrees) == (index < 3), "operation \(index)")
    }
  }
}
