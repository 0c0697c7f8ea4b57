import Machine
import Oracle

/// Hand-written machines and traces for the example adapter, with expectations derived by hand
/// from the manuals (SEMANTICS §1–§4), not from any implementation.
///
/// The machine is the one of docs/state-format.md: guest virtual `0x7f00_0000_1000` → guest
/// physical `0x5000` → host physical `0x10_5000`. The guest's tables are at guest physical
/// `0x1000` (PML4), `0x2000` (PDPT), `0x3000` (PD) and `0x4000` (PT), backed at host physical
/// `0x10_1000`–`0x10_4000`; the nested tables (EPT or NPT) are at host physical
/// `0x1000`–`0x4000` and map guest physical `0x1000`–`0x5fff` to `0x10_1000`–`0x10_5fff`.
enum AdapterTraces {
  /// The page the guest maps, and a neighbour its page table leaves empty.
  static let page: UInt64 = 0x7f00_0000_1000
  static let emptyPage: UInt64 = 0x7f00_0000_2000
  /// The guest's page table, at guest physical 0x4000: entry 1 maps `page`.
  static let guestPageTable: UInt64 = 0x4000

  /// The machine over 4-level EPT (write-back, A/D flags off) or 4-level NPT.
  static func machine(nested: MachineState.NestedKind) -> MachineState {
    var memory = PhysicalMemory()
    // Guest tables (P | R/W | U/S), at the host addresses that back them.
    memory[0x10_17f0] = 0x2007  // PML4[254] → PDPT at guest physical 0x2000
    memory[0x10_2000] = 0x3007  // PDPT[0] → PD at 0x3000
    memory[0x10_3000] = 0x4007  // PD[0] → PT at 0x4000
    memory[0x10_4008] = 0x5007  // PT[1] → page at 0x5000
    let guest = GuestRegisters(cr0: 0x8001_0011, cr3: 0x1000, cr4: 0x20, efer: 0xD00)
    // Nested tables: root at 0x1000, one path down to the table at 0x4000 for guest physical
    // 0–2 MiB; entries 1–5 of that table map guest physical 0x1000–0x5fff.
    let directory: UInt64 = 0x7  // EPT R|W|X, or x86 P|R/W|U/S: the same bits
    let leafBits: UInt64 = nested == .ept ? 0x37 : 0x7  // EPT R|W|X + WB; x86 P|R/W|U/S
    memory[0x1000] = 0x2000 | directory
    memory[0x2000] = 0x3000 | directory
    memory[0x3000] = 0x4000 | directory
    for frame in UInt64(1)...5 { memory[0x4000 + 8 * frame] = (0x10_0000 + frame << 12) | leafBits }
    switch nested {
    case .ept:
      return MachineState(
        guest: guest, nested: .ept(ExtendedPageTables(eptp: 0x101E)), memory: memory)
    case .npt:
      return MachineState(
        processor: Processor(vendor: .amd), guest: guest,
        nested: .npt(NestedPageTables(nCR3: 0x1000)), memory: memory)
    case .none:
      return MachineState(guest: guest, memory: memory)
    }
  }

  /// One step of a trace: an operation and the observation expected of it.
  struct Step: CustomStringConvertible {
    let operation: TraceOperation
    let expected: TraceObservation
    var description: String { operation.json.text() }
  }

  static func step(_ operation: TraceOperation, _ result: TraceResult, exits: [VMExitReason] = [])
    -> Step
  {
    Step(operation: operation, expected: TraceObservation(result, exits: exits))
  }

  static func access(_ address: UInt64, _ access: Access = Access(.read)) -> TraceOperation {
    .access(linearAddress: address, access)
  }

  static func translated(_ hpa: UInt64) -> TraceResult { .outcome(.translated(hostPhysical: hpa)) }

  static func pageFault(_ code: UInt64, _ address: UInt64) -> TraceResult {
    .outcome(.pageFault(errorCode: code, linearAddress: address))
  }

  /// A trace over the EPT machine that reaches every kind of result.
  static let ept: [Step] = [
    // The mapped page: guest physical 0x5234, host physical 0x10_5234.
    step(access(page + 0x234), translated(0x10_5234)),
    step(access(page + 0x238, Access(.write, user: true)), translated(0x10_5238)),
    // Bits 63:47 not all equal: #GP before any walk.
    step(access(0x8000_0000_0000), .outcome(.generalProtection)),
    // PT[2] is empty: #PF, P = 0; a user fetch with NXE reports U/S and I/D.
    step(access(emptyPage), pageFault(0, emptyPage)),
    step(access(emptyPage, Access(.fetch, user: true)), pageFault(0x14, emptyPage)),
    // The guest maps PT[2] to guest physical 0x6000, which the EPT does not map: an EPT
    // violation of the final translation (read, GLA valid, final: 0x181).
    step(.writeGuest(guestPhysical: guestPageTable + 0x10, value: 0x6007), .completed),
    step(
      access(emptyPage + 0x10),
      .outcome(
        .eptViolation(qualification: 0x181, guestPhysical: 0x6010, guestLinear: emptyPage + 0x10)),
      exits: [.eptViolation]),
    // The hypervisor maps it read/write, not executable: reads work; a fetch violates with
    // bits 3 and 4 (R and W on every level) but not 5: 0x4 | 0x18 | 0x80 | 0x100.
    step(.writeHost(hostPhysical: 0x4030, value: 0x10_6033), .completed),
    step(access(emptyPage + 0x10), translated(0x10_6010)),
    step(
      access(emptyPage + 0x10, Access(.fetch)),
      .outcome(
        .eptViolation(qualification: 0x19C, guestPhysical: 0x6010, guestLinear: emptyPage + 0x10)),
      exits: [.eptViolation]),
    // A read-only user page (P | U/S): a supervisor write faults with CR0.WP = 1 (P | W).
    step(.writeGuest(guestPhysical: guestPageTable + 0x18, value: 0x5005), .completed),
    step(access(page + 0x2000, Access(.write)), pageFault(0x3, page + 0x2000)),
    // Clearing CR0.WP lets it through.
    step(.writeRegister(.cr0, value: 0x8000_0011), .completed),
    step(access(page + 0x2008, Access(.write)), translated(0x10_5008)),
    // Refusals: a store nothing backs; a PKRU wider than 32 bits.
    step(.writeGuest(guestPhysical: 0x9000, value: 1), .refused(.unbackedGuestPhysical)),
    step(.writeRegister(.pkru, value: 0x1_0000_0000), .refused(.invalidValue)),
    // A batch stops at the first request nothing backs.
    step(
      .paravirtualBatch([
        PageTableUpdate(entry: guestPageTable + 0x20, value: 0x5007),
        PageTableUpdate(entry: 0x9000, value: 1),
      ]),
      .batch(status: -22, applied: 1)),
    step(access(page + 0x3010), translated(0x10_5010)),
    // Flushes have nothing to report.
    step(.invlpg(linearAddress: page), .completed),
    step(.invept(.allContexts, eptp: 0), .completed),
    // The EPT leaf for 0x5000 becomes write-only (bits 2:0 = 010): a misconfiguration.
    step(.writeHost(hostPhysical: 0x4028, value: 0x10_5032), .completed),
    step(
      access(page + 0x234), .outcome(.eptMisconfiguration(guestPhysical: 0x5234)),
      exits: [.eptMisconfiguration]),
  ]

  /// A trace over the NPT machine: nested faults report EXITINFO1 with U/S always, W for guest
  /// table accesses, and bit 32 (final address) or 33 (guest table).
  static let npt: [Step] = [
    step(access(page + 0x234), translated(0x10_5234)),
    // The guest maps PT[2] to 0x6000, which NPT does not map: final, read, not present.
    step(.writeGuest(guestPhysical: guestPageTable + 0x10, value: 0x6007), .completed),
    step(
      access(emptyPage + 8),
      .outcome(.nestedPageFault(exitInfo1: 0x1_0000_0004, exitInfo2: 0x6008)),
      exits: [.nestedPageFault]),
    // The nested entry for the guest's page table becomes read-only: reading guest tables is a
    // write for NPT, so the walk faults on the table (P | W | U/S, bit 33) at the entry's GPA.
    step(.writeHost(hostPhysical: 0x4020, value: 0x10_4005), .completed),
    step(
      access(page + 0x234),
      .outcome(.nestedPageFault(exitInfo1: 0x2_0000_0007, exitInfo2: 0x4008)),
      exits: [.nestedPageFault]),
  ]
}
