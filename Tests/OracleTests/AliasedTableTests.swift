import FastMMU
import Machine
import Oracle
import Testing

/// A word read in both dimensions — a guest page table that the nested tables point into — and
/// the accessed/dirty writes that change it (docs/fuzzing.md, "how the oracle decides"): a
/// guest walk's A write is an EPT entry's memory-type or reserved bit, so an EPT entry cached
/// before that write holds another value than memory until an invalidation drops it (SEMANTICS
/// §6.1, §6.2).
@Suite struct AliasedTableTests {
  /// A 4-level guest over 4-level EPT with A/D flags: the guest PML4 at guest-physical 0x1000,
  /// its PDPT at 0x2000, its PD at 0x3000, its PT at 0x4000, the guest-physical 0..2 MiB mapped
  /// by one EPT 2-MiB leaf at host 0x3000 to host 0x1_0000_0000. The EPT PML4 entry at host
  /// 0x1000 names host 0x1_0000_2000 as the EPT PDPT: the guest's own PDPT, whose entry 0
  /// (0x3007, P R/W U/S) reads as an EPT PDPTE (R W X) naming the EPT PD at host 0x3000.
  static func state() throws -> MachineState {
    try HandWrittenState.ept(
      eptp: 0x105e, cr0: 0x8001_0001, cr4: 0x10_0020,
      hostRange: (base: 0x1_0000_0000, size: 0x400_0000),
      memory: [
        0x1000: 0x1_0000_2003, 0x3000: 0x1_0000_00b7,
        0x1_0000_17f0: 0x2007, 0x1_0000_2000: 0x3007, 0x1_0000_3000: 0x4007,
        0x1_0000_4000: 0x8000_0000_0010_0007, 0x1_0000_4018: 0x8000_0000_0010_3007,
      ])
  }

  /// Two pages under the same guest PDE.
  static let first: UInt64 = 0x7f00_0000_3000
  static let second: UInt64 = 0x7f00_0000_0000

  /// The oracle after a read of `first`, which translates and sets A in every guest entry on
  /// its path — the guest PDPTE at host 0x1_0000_2000 among them (0x3007 → 0x3027, with the
  /// EPT A bit 0x3127): bit 5, reserved in an EPT PDPTE that names a table.
  static func afterFirstRead() throws -> Oracle {
    let oracle = try Oracle(mode: .nested, state: state())
    let read = oracle.check(
      .access(linearAddress: first, Access(.read)),
      TraceObservation(.outcome(.translated(hostPhysical: 0x1_0010_3000))))
    #expect(read == .agrees)
    return oracle
  }

  @Test func anEPTEntryCachedBeforeAGuestAccessedWriteStillTranslates() throws {
    let oracle = try Self.afterFirstRead()
    // A fresh walk now meets the reserved bit: EPT misconfiguration on the first guest-table
    // read. The guest PDE cached for `first`, and the guest-physical translation of the page
    // table cached with the EPT PDPTE's old value, translate `second` instead: both allowed.
    let misconfigured = Outcome.eptMisconfiguration(guestPhysical: 0x17f0)
    let translated = Outcome.translated(hostPhysical: 0x1_0010_0000)
    #expect(
      oracle.check(
        .access(linearAddress: Self.second, Access(.read)), TraceObservation(.outcome(translated)))
        == .agrees)
    let again = try Self.afterFirstRead()
    let access = TraceOperation.access(linearAddress: Self.second, Access(.read))
    #expect(again.check(access, TraceObservation(.outcome(misconfigured))) == .agrees)
  }

  @Test func anInvalidationOfEveryContextDropsTheEPTEntryCachedBeforeTheWrite() throws {
    let oracle = try Self.afterFirstRead()
    #expect(
      oracle.check(.invept(.allContexts, eptp: 0x105e), TraceObservation(.completed)) == .agrees)
    let translated = Outcome.translated(hostPhysical: 0x1_0010_0000)
    #expect(
      oracle.check(
        .access(linearAddress: Self.second, Access(.read)), TraceObservation(.outcome(translated)))
        != .agrees, "nothing cached survives INVEPT: only the misconfiguration is allowed")
  }
  /// A 4-level guest over 4-level NPT whose PD entry 0 names host 0x1_0000_4000 as the NPT PT:
  /// a guest frame, whose word 8 (0x201027, P R/W U/S A) maps guest-physical 0x1000, the guest
  /// PML4, to host 0x201000, where it is empty (nested seeds 22, 30, 33, 34).
  static func nptState() throws -> MachineState {
    try MachineState.load(
      json: """
        {"format": "nestcheck-state", "version": 1,
         "processor": {"vendor": "amd", "physicalAddressBits": 46, "gigabytePages": true},
         "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00",
                   "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
         "nested": {"kind": "npt", "ncr3": "0x80000000", "hostCR4": "0x20", "hostEFER": "0xd00",
                    "physicalAddressBits": 48},
         "memory": {"0x80000000": "0x80001007", "0x80001000": "0x80002007",
                    "0x80002000": "0x100004007", "0x100004008": "0x201027"}}
        """)
  }

  /// The read walks the NPT to the guest PML4 — a guest-table read, a write for NPT (§3.2),
  /// which may or may not set D in the NPT leaf (IMPL) — and faults on the empty PML4 entry;
  /// the NPT PD entry is then cleared. The word is no nested table any more, yet its D bit was
  /// the nested walk's to set: memory with it set or clear is allowed, whichever choice the
  /// target made.
  @Test(arguments: [false, true])
  func aNestedDirtyBitSetByAGuestTableReadIsAllowedOnceTheTableIsUnlinked(dirty: Bool) throws {
    let state = try Self.nptState()
    let target = FastMMUTarget(
      mode: .nested, configuration: MMUConfiguration(nptDirtyOnTableReads: dirty))
    try target.reset(to: state)
    let oracle = try Oracle(mode: .nested, state: state)
    let trace: [TraceOperation] = [
      .access(linearAddress: 0, Access(.read)),
      .writeHost(hostPhysical: 0x8000_2000, value: 0),
    ]
    for operation in trace {
      #expect(try oracle.check(operation, target.apply(operation)) == .agrees)
    }
    let exported = try #require(target.exportState())
    #expect(exported.memory[0x1_0000_4008] == (dirty ? 0x201067 : 0x201027), "the target's D")
    #expect(oracle.compareMemory(exported) == nil)
  }
}
