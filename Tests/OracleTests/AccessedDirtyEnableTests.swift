import Foundation
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
  static let state = """
    {"format": "nestcheck-state", "version": 1,
     "processor": {"vendor": "intel", "physicalAddressBits": 52, "gigabytePages": true},
     "guest": {"cr0": "0x80010011", "cr3": "0x1000", "cr4": "0x20", "efer": "0xd00",
               "rflags": "0x2", "pkru": "0x0", "pkrs": "0x0"},
     "nested": {"kind": "ept", "eptp": "0x8000001e", "physicalAddressBits": 46,
                "executeOnly": true, "gigabytePages": true, "modeBasedExecute": false},
     "memory": {"0x80000000": "0x80001007", "0x80001000": "0x80002007",
                "0x80002000": "0x80003007", "0x80002008": "0x80004007",
                "0x80003008": "0x100001037", "0x80003010": "0x100002001",
                "0x80003018": "0x100003037", "0x80003020": "0x100004037",
                "0x80004018": "0x100203037",
                "0x100001388": "0x2027", "0x1000021c0": "0x3027", "0x100003000": "0x4027",
                "0x100004028": "0x203027"}}
    """
  static let cached: UInt64 = 0x388e_0000_5000
  static let uncached: UInt64 = 0x388e_0080_0000
  static let accessedDirtyOn = TraceOperation.writeRegister(.nestedRoot, value: 0x8000_005e)
  /// What a walk that reads the guest PDE of `uncached` through the cached PDPTE sees.
  static let notPresent = TraceObservation(
    .outcome(.pageFault(errorCode: 0, linearAddress: uncached)))

  static func oracle(readingFirst: Bool) throws -> Oracle {
    let oracle = try Oracle(
      mode: .nested, state: MachineState.load(json: state, file: "accessed-dirty-enable"))
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
    let on = Self.state.replacingOccurrences(of: "0x8000001e", with: "0x8000005e")
    let oracle = try Oracle(mode: .nested, state: MachineState.load(json: on, file: "on"))
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
