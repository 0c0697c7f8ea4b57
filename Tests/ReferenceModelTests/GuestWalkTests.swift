import Machine
import ReferenceModel
import Testing

/// SEMANTICS §1.3 and §1.7 (WALK64 steps 2–4, 8): the guest walk on its own — present bits,
/// reserved bits at every level, large pages and the physical address they produce.
@Suite("§1.3, §1.7 The x86-64 guest walk")
struct GuestWalkTests {
  // MARK: Translation

  @Test("A 4-KiB page maps frame | LA[11:0]; 2 MiB frame | LA[20:0]; 1 GiB frame | LA[29:0]")
  func pageSizes() throws {
    var s = Setup.native()
    s.map(gva, to: 0x0123_4000, bits: X86.prw)
    let other: UInt64 = 5 << 39 | 0x1234_5678
    s.map(other, to: 0x0060_0000, level: 2, bits: X86.prw)
    let huge: UInt64 = 6 << 39 | 0x2345_6789
    s.map(huge, to: 0x8000_0000, level: 3, bits: X86.prw)
    let model = try s.model()

    let small = model.translate(gva, .read)
    #expect(small.outcome == .translated(hostPhysical: 0x0123_4567))
    #expect(small.guestPageSize == 0x1000)
    let large = model.translate(other, .read)
    #expect(large.outcome == .translated(hostPhysical: 0x0060_0000 | 0x14_5678))
    #expect(large.guestPageSize == 0x20_0000)
    let gigantic = model.translate(huge, .read)
    #expect(gigantic.outcome == .translated(hostPhysical: 0x8000_0000 | 0x2345_6789))
    #expect(gigantic.guestPageSize == 0x4000_0000)
  }

  @Test("5-level paging (CR4.LA57) indexes the PML5 with LA[56:48] and reads five entries")
  func fiveLevel() throws {
    var s = Setup.native(levels: 5)
    let address: UInt64 = 0x00AB_0000_0000_0000 | gva
    s.map(address, to: dataGPA, bits: X86.prw)
    let t = try s.translate(address, .read, recording: true)
    #expect(t.outcome == .translated(hostPhysical: dataGPA | 0x567))
    #expect(t.referenceCount == 5)
    // The PML5E read is entry 0xAB of the root table at 0x1000.
    #expect(t.references.first?.address == 0x1000 + 8 * 0xAB)
    #expect(t.references.map(\.level) == [5, 4, 3, 2, 1])
  }

  @Test("The walk reads each entry at tableBase + 8·index, with the table from bits M-1:12")
  func entryAddresses() throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    let t = try s.translate(gva, .read, recording: true)
    let tables = s.guest.tables  // PML4, PDPT, PD, PT in allocation order
    #expect(
      t.references.map(\.address) == [
        tables[0] + 8 * 1, tables[1] + 8 * 2, tables[2] + 8 * 3, tables[3] + 8 * 4,
      ])
  }

  @Test(
    "CR3 bits 11:0 (PCID, or PWT and PCD) do not move the root: it is CR3[M-1:12]",
    arguments: [0x018, 0xABC, 0xFFF])
  func rootIgnoresLowCR3Bits(low: UInt64) throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    var machine = s.machine()
    machine.guest.cr3 |= low
    let t = try ConcreteModel(machine).translate(gva, .read, recording: true)
    #expect(t.outcome == .translated(hostPhysical: dataGPA | 0x567))
    #expect(t.references.first?.address == 0x1000 + 8 * 1)
  }

  // MARK: Not present (step 4b)

  @Test("P = 0 at any level stops the walk with #PF, P = 0 in the error code", arguments: 1...4)
  func notPresent(level: Int) throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: level, to: 0)
    let t = try s.translate(gva, .userWrite, recording: true)
    #expect(t.outcome == .pageFault(errorCode: PF.w | PF.u, linearAddress: gva))
    #expect(t.decidingRule == .notPresent)
    #expect(t.decidingStage == .guest)
    #expect(t.level == UInt64(level))
    // Entries below the not-present one are never read.
    #expect(t.referenceCount == UInt64(5 - level))
  }

  @Test(
    "Reserved bits of a not-present entry are never examined",
    arguments: [X86.bit(51), X86.xd, X86.ps, X86.bit(13), X86.bit(46)])
  func notPresentIgnoresReservedBits(bits: UInt64) throws {
    var s = Setup.native()
    s.controls.nxe = false
    s.map(gva, to: dataGPA, bits: X86.prw)
    for level in 1...4 {
      var t = s
      t.setGuestBits(of: gva, level: level, to: bits | X86.w | X86.u)
      let result = try t.translate(gva, .read)
      #expect(result.outcome == .pageFault(errorCode: 0, linearAddress: gva))
      #expect(result.decidingRule == .notPresent)
    }
  }

  // MARK: Reserved bits (step 4d; §1.3 masks)

  /// A reserved-bit case: the bits set in the entry at `level` of an otherwise valid 4-KiB path
  /// (or of a large leaf when `leafLevel` > 1) and whether they are reserved there.
  struct ReservedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var level: Int
    var leafLevel = 1
    var bits: UInt64
    var reserved: Bool
    var addressBits = 46
    var vendor = Vendor.intel
    var gigabytePages = true
    var nxe = true
    var testDescription: String { name }
  }

  static let reservedCases: [ReservedCase] = [
    // HI(M) = bits 51:M at every level, M = 46.
    ReservedCase(
      name: "PML4E bit 51 (above MAXPHYADDR 46)", level: 4, bits: 1 << 51, reserved: true),
    ReservedCase(name: "PDPTE bit 51", level: 3, bits: 1 << 51, reserved: true),
    ReservedCase(name: "PDE bit 51", level: 2, bits: 1 << 51, reserved: true),
    ReservedCase(name: "PTE bit 51", level: 1, bits: 1 << 51, reserved: true),
    ReservedCase(name: "PTE bit 46 = M", level: 1, bits: 1 << 46, reserved: true),
    ReservedCase(name: "PDE bit 46 = M", level: 2, bits: 1 << 46, reserved: true),
    ReservedCase(
      name: "PTE bit 36 with M = 36", level: 1, bits: 1 << 36, reserved: true, addressBits: 36),
    ReservedCase(
      name: "PML4E bit 40 with M = 39", level: 4, bits: 1 << 40, reserved: true, addressBits: 39),
    ReservedCase(
      name: "PTE bit 51 with M = 52 (no reserved address bits)", level: 1, bits: 1 << 51,
      reserved: false, addressBits: 52),
    // Bit 63 is XD with NXE = 1 and reserved with NXE = 0, at every level.
    ReservedCase(name: "PML4E XD, NXE = 0", level: 4, bits: X86.xd, reserved: true, nxe: false),
    ReservedCase(name: "PDPTE XD, NXE = 0", level: 3, bits: X86.xd, reserved: true, nxe: false),
    ReservedCase(name: "PDE XD, NXE = 0", level: 2, bits: X86.xd, reserved: true, nxe: false),
    ReservedCase(name: "PTE XD, NXE = 0", level: 1, bits: X86.xd, reserved: true, nxe: false),
    ReservedCase(
      name: "PTE XD, NXE = 1 (a permission bit)", level: 1, bits: X86.xd, reserved: false),
    // PS must be 0 in a PML4E (and PML5E: see `pml5PageSize`).
    ReservedCase(name: "PML4E PS", level: 4, bits: X86.ps, reserved: true),
    // AMD reserves bit 8 of PML4E/PML5E; Intel ignores it; no vendor reserves it lower down.
    ReservedCase(
      name: "PML4E bit 8 on AMD", level: 4, bits: X86.bit8, reserved: true, vendor: .amd),
    ReservedCase(name: "PML4E bit 8 on Intel", level: 4, bits: X86.bit8, reserved: false),
    ReservedCase(
      name: "PDPTE bit 8 on AMD", level: 3, bits: X86.bit8, reserved: false, vendor: .amd),
    ReservedCase(
      name: "PTE bit 8 (G) on AMD", level: 1, bits: X86.bit8, reserved: false, vendor: .amd),
    // Leaf-only masks: bits 20:13 of a 2-MiB leaf, 29:13 of a 1-GiB leaf; bit 12 is PAT.
    ReservedCase(name: "2-MiB leaf bit 13", level: 2, leafLevel: 2, bits: 1 << 13, reserved: true),
    ReservedCase(name: "2-MiB leaf bit 16", level: 2, leafLevel: 2, bits: 1 << 16, reserved: true),
    ReservedCase(name: "2-MiB leaf bit 20", level: 2, leafLevel: 2, bits: 1 << 20, reserved: true),
    ReservedCase(
      name: "2-MiB leaf bit 12 (PAT)", level: 2, leafLevel: 2, bits: 1 << 12, reserved: false),
    ReservedCase(name: "1-GiB leaf bit 13", level: 3, leafLevel: 3, bits: 1 << 13, reserved: true),
    ReservedCase(name: "1-GiB leaf bit 29", level: 3, leafLevel: 3, bits: 1 << 29, reserved: true),
    ReservedCase(
      name: "1-GiB leaf bit 12 (PAT)", level: 3, leafLevel: 3, bits: 1 << 12, reserved: false),
    ReservedCase(
      name: "1-GiB leaf without 1-GiB page support (PS reserved)", level: 3, leafLevel: 3, bits: 0,
      reserved: true, gigabytePages: false),
    ReservedCase(
      name: "1-GiB leaf with 1-GiB page support", level: 3, leafLevel: 3, bits: 0, reserved: false),
    ReservedCase(
      name: "2-MiB leaf without 1-GiB page support", level: 2, leafLevel: 2, bits: 0,
      reserved: false, gigabytePages: false),
    // Ignored bits: 11:9 and 58:52 everywhere, the key bits 62:59 in non-leaf entries.
    ReservedCase(
      name: "PML4E bits 11:9 and 58:52", level: 4, bits: 0x07F0_0000_0000_0E00, reserved: false),
    ReservedCase(
      name: "PDE bits 11:9 and 58:52", level: 2, bits: 0x07F0_0000_0000_0E00, reserved: false),
    ReservedCase(
      name: "PTE bits 11:9 and 58:52", level: 1, bits: 0x07F0_0000_0000_0E00, reserved: false),
    ReservedCase(name: "PDPTE protection key 15", level: 3, bits: X86.key(15), reserved: false),
  ]

  @Test(
    "Reserved bits per level give #PF with P | RSVD; other bits do not", arguments: reservedCases)
  func reservedBits(_ c: ReservedCase) throws {
    var s = Setup.native()
    s.processor = Processor(
      vendor: c.vendor, physicalAddressBits: c.addressBits, gigabytePages: c.gigabytePages)
    s.controls.nxe = c.nxe
    let frame: UInt64 = c.leafLevel == 3 ? 0x4000_0000 : (c.leafLevel == 2 ? 0x60_0000 : dataGPA)
    s.map(gva, to: frame, level: c.leafLevel, bits: X86.prw)
    let entry = s.guestValue(of: gva, level: c.level)
    s.guest.setEntry(of: gva, level: c.level, to: entry | c.bits)
    let t = try s.translate(gva, .userWrite)
    if c.reserved {
      #expect(t.outcome == .pageFault(errorCode: PF.p | PF.w | PF.u | PF.rsvd, linearAddress: gva))
      #expect(t.decidingRule == .reservedBit)
      #expect(t.level == UInt64(c.level))
    } else {
      #expect(t.hostPhysical != nil, "\(t.outcome)")
      #expect(t.decidingRule == .translated)
    }
  }

  @Test("PS in a PML5E is reserved (5-level paging)")
  func pml5PageSize() throws {
    var s = Setup.native(levels: 5)
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: 5, to: X86.prw | X86.ps)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd, linearAddress: gva))
    #expect(t.level == 5)
  }

  @Test("AMD reserves bit 8 of a PML5E as well")
  func pml5Bit8OnAMD() throws {
    var s = Setup.native(levels: 5)
    s.processor.vendor = .amd
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: 5, to: X86.prw | X86.bit8)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd, linearAddress: gva))
  }

  @Test("Bits 20:13 of a non-leaf PDE are address bits, not reserved")
  func nonLeafAddressBitsAreNotReserved() throws {
    // The PDE names a page table at 0x40_2000 (bit 13 set) instead of at its usual place.
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.guest.setEntry(of: gva, level: 2, to: 0x40_2000 | X86.prw)
    var memory = s.machine().memory
    memory[0x40_2000 + 8 * 4] = 0x0777_0000 | X86.prw
    let machine = MachineState(processor: s.processor, guest: s.machine().guest, memory: memory)
    let t = try ConcreteModel(machine).translate(gva, .read)
    #expect(t.outcome == .translated(hostPhysical: 0x0777_0567))
  }

  @Test("The walk checks top-down: a fault in an upper entry hides anything below it")
  func upperFaultWins() throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: 1, to: 0)  // PTE not present
    s.setGuestBits(of: gva, level: 2, to: X86.prw | X86.bit(51))  // PDE reserved
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd, linearAddress: gva))
    #expect(t.level == 2)
  }

  @Test("A reserved-bit fault beats every permission rule (§1.5 runs only after a valid walk)")
  func reservedBeatsPermissions() throws {
    // Supervisor-only, read-only, XD page: a user write would break rules 1 and 2.
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.p | X86.xd | X86.bit(51))
    let t = try s.translate(gva, .userWrite)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.w | PF.u | PF.rsvd, linearAddress: gva))
    #expect(t.decidingRule == .reservedBit)
  }

  @Test("Address bits from M up are not silently dropped: the frame keeps every bit below M")
  func highFrameBits() throws {
    var s = Setup.native()
    let frame: UInt64 = 1 << 45 | 0x1000
    s.map(gva, to: frame, bits: X86.prw)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .translated(hostPhysical: frame | 0x567))
  }
}
