import Machine
import Oracle
import Testing

/// Setting EPTP bit 6 (EPT A/D flags) with the same root invalidates nothing: mappings are tagged
/// by EP4TA alone (SEMANTICS §6.2). A guest paging entry cached while the flags were off was read
/// as a read; with them on, every guest-table access is a write (§2.4) — but a walk that uses
/// the cached entry does not access that table again.
@Suite struct AccessedDirtyEnableTests {
  /// A 4-level guest over 4-level EPT with A/D flags off. The guest PDPT (guest-physical 0x2000)
  /// is mapped read-only by EPT; every other guest table read-write. The guest's entries have
  /// A set already, so a read walk writes none. Under the guest PD (0x3000) entry 0 names the
  /// PT that maps `cached`; entry 4, for `uncached`, is not present.
  static func state(eptp: UInt64 = 0x8000_001e) throws -> MachineState {
    try HandWrittenState.ept(
      eptp: eptp, cr4: 0x20,
      memory: [
        0x8000_0000: 0x8000_1007, 0x8000_1000: 0x8000_2007,
        0x8000_2000: 0x8000_3007, 0x8000_2008: 0x8000_4007,
        0x8000_3008: 0x1_0000_1037, 0x8000_3010: 0x1_0000_2001,
        0x8000_3018: 0x1_0000_3037, 0x8000_3020: 0x1_0000_4037,
        0x8000_4018: 0x1_0020_3037,
        0x1_0000_1388: 0x2027, 0x1_0000_21c0: 0x3027, 0x1_0000_3000: 0x4027,
        0x1_0000_4028: 0x20_3027,
      ])
  }
  static let cached: UInt64 = 0x388e_0000_5000
  static let uncached: UInt64 = 0x388e_0080_0000
  static let accessedDirtyOn = TraceOperation.writeRegister(.nestedRoot, value: 0x8000_005e)
  /// What a walk that reads the guest PDE of `uncached` through the cached PDPTE sees.
  static let notPresent = TraceObservation(
    .outcome(.pageFault(errorCode: 0, linearAddress: uncached)))

  static func oracle(readingFirst: Bool) throws -> Oracle {
    let oracle = try Oracle(mode: .nested, state: state())
    if readingFirst {
      let read = oracle.check(
        .access(linearAddress: cached, Access(.read)),
        TraceObservation(.outcome(.translated(hostPhysical: 0x1_0020_3000))))
      #expect(read == .agrees, "A/D flags off: the read-only PDPT is readable")
    }
    #expect(oracle.check(accessedDirtyOn, TraceObservation(.completed)) == .agrees)
    return oracle
  }

  @Test func aGuestEntryCachedWithTheFlagsOffIsUsedWithoutTheWriteRight() throws {
    let oracle = try Self.oracle(readingFirst: true)
    // A fresh walk now writes the read-only PDPT: an EPT violation. The PDPTE cached by the
    // first read skips that access and reaches the not-present PDE.
    let uncached = TraceOperation.access(linearAddress: Self.uncached, Access(.read))
    #expect(oracle.check(uncached, Self.notPresent) == .agrees)
  }

  @Test func aGuestEntryMayHaveBeenCachedWithTheFlagsOffWithoutAnAccess() throws {
    // Translations may be cached speculatively (§6.1): the PDPTE held its value, A set, while
    // the flags were off, so it may be cached without any access having used it.
    let oracle = try Self.oracle(readingFirst: false)
    let uncached = TraceOperation.access(linearAddress: Self.uncached, Access(.read))
    #expect(oracle.check(uncached, Self.notPresent) == .agrees)
  }

  @Test func withTheFlagsOnSinceTheStartEveryTableAccessIsAWrite() throws {
    let oracle = try Oracle(mode: .nested, state: Self.state(eptp: 0x8000_005e))
    let uncached = TraceOperation.access(linearAddress: Self.uncached, Access(.read))
    #expect(oracle.check(uncached, Self.notPresent) != .agrees)
  }

  @Test func anINVEPTDropsWhatWasCachedWithTheFlagsOff() throws {
    let oracle = try Self.oracle(readingFirst: true)
    let flush = TraceOperation.invept(.singleContext, eptp: 0x8000_005e)
    #expect(oracle.check(flush, TraceObservation(.completed)) == .agrees)
    let uncached = TraceOperation.access(linearAddress: Self.uncached, Access(.read))
    #expect(oracle.check(uncached, Self.notPresent) != .agrees)
  }
}
