import Machine
import Oracle
import Testing

/// Setting EPTP bit 6 (EPT A/D flags) with the same root invalidates nothing: mappings are tagged
/// by EP4TA alone (SEMANTICS §6.2). A guest paging entry cached while the flags were off was read
/// as a read; with them on, every guest-table access is a write (§2.4) — but a walk that uses
/// the cached entry does not access that table again.
@Suite struct AccessedDirtyEnableTests {
  /// A 4-level guest over 4-level EPT with A/D flags off. The guest PDPT (guest-physical 0x2000)
  /// is mapped read-only by EPT; the guest PT (0x4000) by `tableEntry`, read-write unless a test
  /// says otherwise; every other guest table read-write. The guest's entries have A set
  /// already, so a read walk writes none. Under the guest PD (0x3000) entry 0 names the PT that
  /// maps `cached` and `neighbour`; entry 4, for `uncached`, is not present.
  static func state(eptp: UInt64 = 0x8000_001e, tableEntry: UInt64 = 0x1_0000_4037) throws
    -> MachineState
  {
    try HandWrittenState.ept(
      eptp: eptp, cr4: 0x20,
      memory: [
        0x8000_0000: 0x8000_1007, 0x8000_1000: 0x8000_2007,
        0x8000_2000: 0x8000_3007, 0x8000_2008: 0x8000_4007,
        0x8000_3008: 0x1_0000_1037, 0x8000_3010: 0x1_0000_2001,
        0x8000_3018: 0x1_0000_3037, 0x8000_3020: tableEntry,
        0x8000_4018: 0x1_0020_3037,
        0x1_0000_1388: 0x2027, 0x1_0000_21c0: 0x3027, 0x1_0000_3000: 0x4027,
        0x1_0000_4028: 0x20_3027, 0x1_0000_4030: 0x20_3027,
      ])
  }
  static let cached: UInt64 = 0x388e_0000_5000
  static let uncached: UInt64 = 0x388e_0080_0000
  /// The page after `cached`: its PTE, in the same guest PT, is one no walk has read.
  static let neighbour: UInt64 = 0x388e_0000_6000
  static let accessedDirtyOn = TraceOperation.writeRegister(.nestedRoot, value: 0x8000_005e)
  /// What a walk that reads the guest PDE of `uncached` through the cached PDPTE sees.
  static let notPresent = TraceObservation(
    .outcome(.pageFault(errorCode: 0, linearAddress: uncached)))

  static func oracle(readingFirst: Bool, tableEntry: UInt64 = 0x1_0000_4037) throws -> Oracle {
    let oracle = try Oracle(mode: .nested, state: state(tableEntry: tableEntry))
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

  /// What a walk that reads the PTE of `neighbour` now, with the flags on, meets when EPT maps
  /// the guest PT read-only: a violation of a guest-table access (qualification bit 8 clear)
  /// that needs the write right (bit 1) where the path grants only read (bit 3).
  static let tableWriteDenied = TraceObservation(
    .outcome(.eptViolation(qualification: 0x8b, guestPhysical: 0x4030, guestLinear: neighbour)))
  static let readOnlyTable: UInt64 = 0x1_0000_4001

  @Test func aWalkUsingEntriesCachedWithTheFlagsOffReadsTheRestAsWrites() throws {
    // The read of `cached` with the flags off caches the guest PDE (a paging-structure cache,
    // SEMANTICS §6.1). A walk of `neighbour` may use it, skipping the read-only PDPT, and then
    // reads the PTE now: a write, denied by the read-only PT.
    let oracle = try Self.oracle(readingFirst: true, tableEntry: Self.readOnlyTable)
    let neighbour = TraceOperation.access(linearAddress: Self.neighbour, Access(.read))
    #expect(oracle.check(neighbour, Self.tableWriteDenied) == .agrees)
  }

  @Test func withTheFlagsOnSinceTheStartNoWalkReachesTheTableBelowTheReadOnlyOne() throws {
    // Nothing was read with the flags off: every walk writes the read-only PDPT first and stops
    // there, so no violation can name the PT below it.
    let oracle = try Oracle(
      mode: .nested, state: Self.state(eptp: 0x8000_005e, tableEntry: Self.readOnlyTable))
    let neighbour = TraceOperation.access(linearAddress: Self.neighbour, Access(.read))
    #expect(oracle.check(neighbour, Self.tableWriteDenied) != .agrees)
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
