import Machine
import ReferenceModel
import Testing
import Workloads

/// The corner cases SEMANTICS lists because implementations got them wrong (§1.9, §2.8, §3.6).
/// Each test names the bug or commit it guards against.
@Suite("Corner cases and historical bugs")
struct CornerCaseTests {
  /// A data page in nested PML4 slot 1, away from the guest tables' nested paths.
  static let page: UInt64 = 0x80_0123_4000
  static let finalGPA = page | 0x567

  // MARK: §1.9 x86 paging

  @Test("QEMU #676: a non-canonical alias of a mapped address is #GP, never #PF or a translation")
  func qemuNonCanonicalIsGeneralProtection() throws {
    // PML4 index 257 (bit 47 set): canonical only with bits 63:48 set too.
    let high: UInt64 = 0xFFFF_8080_8060_4567
    let alias: UInt64 = high & 0x0000_FFFF_FFFF_FFFF
    var s = Setup.native()
    s.map(high, to: dataGPA, bits: X86.prw)
    #expect(try s.translate(high, .read).hostPhysical == dataGPA | 0x567)
    for access in [Access.read, .write, .fetch, .userRead] {
      let t = try s.translate(alias, access)
      #expect(t.outcome == .generalProtection)
      #expect(t.referenceCount == 0)
    }
  }

  @Test(
    "QEMU 'Fix physical address truncation': frame bits at or above MAXPHYADDR fault as RSVD",
    arguments: [36, 40, 45])
  func qemuPhysicalAddressTruncation(addressBits: Int) throws {
    var s = Setup.native()
    s.processor.physicalAddressBits = addressBits
    s.map(gva, to: dataGPA | 1 << UInt64(addressBits), bits: X86.prw)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd, linearAddress: gva))
    // One bit lower is an ordinary address bit, kept in full.
    s.map(gva, to: dataGPA | 1 << UInt64(addressBits - 1), bits: X86.prw)
    let below = try s.translate(gva, .read)
    #expect(below.hostPhysical == dataGPA | 1 << UInt64(addressBits - 1) | 0x567)
  }

  @Test("QEMU 'mask high bits of CR3': CR3 bits above MAXPHYADDR are refused, never truncated")
  func qemuHighCR3Bits() throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    var machine = s.machine()
    machine.guest.cr3 |= 1 << 50
    #expect(throws: FormatError.self) { try ConcreteModel(machine) }
  }

  @Test(
    "QEMU 'leave the A20 bit set in the final NPT walk': GPA bit 20 is never masked",
    arguments: [true, false])
  func qemuA20InFinalNestedWalk(guestPaging: Bool) throws {
    // Only the GPA with bit 20 set is mapped; its A20-masked alias is not.
    let gpa: UInt64 = 0x0010_0000 | 0x0123_4000
    var s = Setup.npt()
    s.controls.paging = guestPaging
    s.map(gva, to: gpa, bits: X86.prw | X86.a | X86.d)
    s.mapNested(gpa, bits: X86.prw)
    let linear = guestPaging ? gva : gpa | 0x567
    let t = try s.translate(linear, .read)
    #expect(t.outcome == .translated(hostPhysical: gpa + Setup.nestedOffset + 0x567))
  }

  @Test("QEMU #2206 (MMU-index inversion): nested walks are user-mode, the guest walk keeps CPL")
  func qemuNestedMMUIndex() throws {
    // A guest supervisor page over NPT entries that are all user-mode: a CPL-0 access passes;
    // a CPL-3 access is refused by the guest's walk (#PF), not by the nested one.
    var s = Setup.npt()
    s.map(gva, to: Self.page, bits: X86.p | X86.w | X86.a | X86.d)
    s.mapNested(Self.page, bits: X86.prw)
    #expect(try s.translate(gva, .read).hostPhysical == Self.finalGPA + Setup.nestedOffset)
    #expect(try s.translate(gva, .userRead).errorCode == PF.p | PF.u)
    // Nested supervisor-only data: refused for a CPL-0 guest access, reported U = 1.
    s.mapNested(Self.page, bits: X86.p | X86.w)
    #expect(
      try s.translate(gva, .read).outcome
        == .nestedPageFault(exitInfo1: PF.p | PF.u | NPF.final, exitInfo2: Self.finalGPA))
  }

  @Test(
    "access.c pde.nx / pte.nx with EFER.NXE = 0: XD is a reserved bit, for every access",
    arguments: [1, 2], [Access.read, .write, .fetch, .userFetch])
  func accessXDWithoutNXE(level: Int, access: Access) throws {
    var s = Setup.native()
    s.controls.nxe = false
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: level, to: X86.prw | X86.xd)
    let t = try s.translate(gva, access)
    // No I/D: neither SMEP nor NXE is on.
    let accessBits = (access.kind == .write ? PF.w : 0) | (access.user ? PF.u : 0)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd | accessBits, linearAddress: gva))
  }

  @Test("access.c pde.13: bit 13 of a 2-MiB PDE is reserved; bit 13 of a non-leaf PDE is not")
  func accessPde13() throws {
    var s = Setup.native()
    s.map(gva, to: 0x60_0000, level: 2, bits: X86.prw | X86.bit(13))
    #expect(try s.translate(gva, .read).errorCode == PF.p | PF.rsvd)
    s.map(gva, to: 0x60_0000, level: 2, bits: X86.prw | X86.bit(12))  // PAT, not reserved
    #expect(try s.translate(gva, .read).hostPhysical == 0x60_0000 | (gva & 0x1F_FFFF))
  }

  @Test(
    "access.c pte.36 and pte.51: reserved only where MAXPHYADDR is small enough",
    arguments: [(36, 36, true), (40, 36, false), (46, 51, true), (52, 51, false)])
  func accessReservedAddressBits(addressBits: Int, bit: Int, reserved: Bool) throws {
    var s = Setup.native()
    s.processor.physicalAddressBits = addressBits
    s.map(gva, to: dataGPA, bits: X86.prw | X86.bit(bit))
    let t = try s.translate(gva, .read)
    if reserved {
      #expect(t.errorCode == PF.p | PF.rsvd)
    } else {
      #expect(t.hostPhysical == dataGPA | X86.bit(bit) | 0x567)
    }
  }

  @Test("PS in a PML4E is reserved (it would be a 512-GiB page)")
  func pml4PageSize() throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw)
    s.setGuestBits(of: gva, level: 4, to: X86.prw | X86.ps)
    #expect(try s.translate(gva, .read).errorCode == PF.p | PF.rsvd)
  }

  @Test(
    "KVM guest_can_use_gbpages: under TDP a guest 1-GiB page follows the processor's support",
    arguments: [true, false])
  func kvmGigabytePagesUnderTDP(supported: Bool) throws {
    var s = Setup.ept()
    s.processor.gigabytePages = supported
    s.map(gva, to: 0x80_0000_0000, level: 3, bits: X86.prw | X86.a | X86.d)
    s.mapNested(0x80_0000_0000, level: 3, bits: EPTE.rwx | EPTE.wb)
    let t = try s.translate(gva, .read)
    if supported {
      #expect(t.hostPhysical == 0x80_0000_0000 + Setup.nestedOffset + (gva & 0x3FFF_FFFF))
    } else {
      #expect(t.errorCode == PF.p | PF.rsvd)
    }
  }

  @Test(
    "KVM nonleaf_bit8_rsvd, Xen guest_l4e_rsvd_bits: bit 8 of PML4E/PML5E is reserved on AMD only",
    arguments: [Vendor.intel, .amd], [4, 5])
  func amdBit8(vendor: Vendor, levels: Int) throws {
    var s = Setup.native(levels: levels)
    s.processor.vendor = vendor
    s.map(gva, to: dataGPA, bits: X86.prw)
    for level in 3...levels {
      var t = s
      t.setGuestBits(of: gva, level: level, to: X86.prw | X86.bit8)
      let result = try t.translate(gva, .read)
      if vendor == .amd && level >= 4 {
        #expect(result.errorCode == PF.p | PF.rsvd, "level \(level)")
      } else {
        #expect(result.hostPhysical == dataGPA | 0x567, "level \(level)")
      }
    }
  }

  @Test("access.c check_toggle_cr0_wp: every walk reads CR0.WP afresh")
  func accessToggleWP() throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.p | X86.a | X86.d)
    let machine = s.machine()
    var state = try ModelState<Concrete>(machine)
    let d = Concrete()
    func control(wp: Bool) -> GuestControl<Concrete> {
      let g = machine.guest
      return GuestControl(
        d, cr0: wp ? g.cr0 | CR0.wp : g.cr0 & ~CR0.wp, cr3: g.cr3, cr4: g.cr4, efer: g.efer,
        rflags: g.rflags, pkru: 0, pkrs: 0, addressBits: 46)
    }
    let write = AccessDescriptor(d, Access.write)
    for wp in [true, false, true, false] {
      state.guest = control(wp: wp)
      let t = ReferenceModel.translate(d, state, linear: gva, access: write, choices: .kvm)
      #expect(
        t.outcome
          == (wp
            ? .pageFault(errorCode: PF.p | PF.w, linearAddress: gva)
            : .translated(hostPhysical: dataGPA | 0x567)))
    }
  }

  @Test("KVM SMEP with CR0.WP = 0: SMEP still forbids the fetch; WP = 0 still allows the write")
  func kvmSMEPWithoutWP() throws {
    var s = Setup.native()
    s.controls.wp = false
    s.controls.smep = true
    s.map(gva, to: dataGPA, bits: X86.p | X86.u | X86.a | X86.d)  // user, read-only
    #expect(try s.translate(gva, .write).hostPhysical == dataGPA | 0x567)
    #expect(try s.translate(gva, .fetch).errorCode == PF.p | PF.id)
  }

  @Test("KVM 4f4aa80e3b88: an implicit supervisor access is never rescued from SMAP by AC")
  func kvmImplicitSMAP() throws {
    var s = Setup.native()
    s.controls.smap = true
    s.controls.ac = true
    s.map(gva, to: dataGPA, bits: X86.prw | X86.a | X86.d)
    #expect(try s.translate(gva, .read).hostPhysical == dataGPA | 0x567)
    #expect(try s.translate(gva, .implicitRead).errorCode == PF.p)
    #expect(try s.translate(gva, .implicitWrite).errorCode == PF.p | PF.w)
  }

  // MARK: §2.8 EPT

  static func ept(
    data: UInt64, guestLeaf: UInt64 = X86.prw | X86.a | X86.d, accessedDirty: Bool = false
  )
    -> Setup
  {
    var s = Setup.ept(accessedDirty: accessedDirty)
    s.map(gva, to: page, bits: guestLeaf)
    s.mapNested(page, bits: data)
    return s
  }

  static func finalViolation(_ q: UInt64) -> Outcome {
    .eptViolation(
      qualification: q | Qual.linearValid | Qual.final, guestPhysical: finalGPA, guestLinear: gva)
  }

  @Test(
    "KVM 0780516a18f8 (ept_access_test_read_only, _read_write): bits 3–5 are the raw R/W/X AND")
  func kvmEPTQualificationRights() throws {
    // Read-only: a write reports R = 1, W = 0, X = 0.
    let readOnly = try Self.ept(data: EPTE.r | EPTE.wb).translate(gva, .write)
    #expect(readOnly.outcome == Self.finalViolation(Qual.write | Qual.readable))
    // Read-write: a fetch reports R = 1, W = 1, X = 0.
    let readWrite = try Self.ept(data: EPTE.r | EPTE.w | EPTE.wb).translate(gva, .fetch)
    #expect(readWrite.outcome == Self.finalViolation(Qual.fetch | Qual.readable | Qual.writable))
    // Over levels: an EPT PDPTE without X and a PDE without W clear bits 5 and 4.
    var levels = Self.ept(data: EPTE.rwx | EPTE.wb)
    levels.setNestedBits(of: Self.page, level: 3, to: EPTE.r | EPTE.w)
    levels.setNestedBits(of: Self.page, level: 2, to: EPTE.r | EPTE.x)
    #expect(
      try levels.translate(gva, .write).outcome == Self.finalViolation(Qual.write | Qual.readable))
  }

  @Test(
    "KVM ae1e2d1082ae: with EPT A/D a read-only guest walk dirties the guest tables' EPT leaves")
  func kvmEPTAccessedDirty() throws {
    let s = Self.ept(data: EPTE.rwx | EPTE.wb, accessedDirty: true)
    let t = try s.translate(gva, .read)
    #expect(t.hostPhysical != nil)
    let memory = s.machine().memory
    let dirtied = Set(
      t.performedUpdates.filter { $0.stage != .guest && $0.bits & EPTE.d != 0 }.map(\.address))
    let tableLeaves = Set(
      s.guest.tables.compactMap { radixPath(memory, root: 0x1000, levels: 4, address: $0).last })
    #expect(dirtied == tableLeaves)
  }

  @Test(
    "selftest nested_tdp_fault_test (EPT): {final, PT page} × {unmapped, write-protected}",
    arguments: [false, true], [false, true])
  func selftestEPT(tablePage: Bool, writeProtected: Bool) throws {
    // A guest write; the guest PTE lacks D so the walk must write it.
    var s = Self.ept(data: EPTE.rwx | EPTE.wb, guestLeaf: X86.prw | X86.a)
    let pte = s.guestEntry(of: gva, level: 1)
    let protection = writeProtected ? EPTE.r | EPTE.wb : 0
    if tablePage {
      s.mapNested(pte & ~0xFFF, bits: protection)
    } else {
      s.mapNested(Self.page, bits: protection)
    }
    let t = try s.translate(gva, .write)
    let expected: Outcome
    switch (tablePage, writeProtected) {
    case (false, false):
      expected = Self.finalViolation(Qual.write)
    case (false, true):
      expected = Self.finalViolation(Qual.write | Qual.readable)
    case (true, false):
      // The walk's read of the PTE exits: bit 0 (EPT A/D off), bit 7, not bit 8.
      expected = .eptViolation(
        qualification: Qual.read | Qual.linearValid, guestPhysical: pte, guestLinear: gva)
    case (true, true):
      // The read passes; the D write exits: bit 1, R = 1, bit 7, not bit 8.
      expected = .eptViolation(
        qualification: Qual.write | Qual.readable | Qual.linearValid, guestPhysical: pte,
        guestLinear: gva)
    }
    #expect(t.outcome == expected)
  }

  @Test(
    "KVM VMX_EPT_MISCONFIG_WX_VALUE: the W+X (110) encoding KVM uses for MMIO is misconfigured",
    arguments: [Access.read, .write, .fetch, .userFetch])
  func kvmMMIOMisconfiguration(access: Access) throws {
    let t = try Self.ept(data: EPTE.w | EPTE.x | EPTE.wb).translate(gva, access)
    #expect(t.outcome == .eptMisconfiguration(guestPhysical: Self.finalGPA))
    #expect(t.decidingRule == .eptWriteWithoutRead)
  }

  @Test("KVM FNAME(gpte_access): execute-only EPT lets fetches through and refuses data accesses")
  func kvmExecuteOnly() throws {
    let s = Self.ept(data: EPTE.x | EPTE.wb)
    let host = Self.finalGPA + Setup.nestedOffset
    #expect(try s.translate(gva, .fetch).hostPhysical == host)
    #expect(try s.translate(gva, .userFetch).hostPhysical == host)
    #expect(
      try s.translate(gva, .userRead).outcome == Self.finalViolation(Qual.read | Qual.executable))
    #expect(
      try s.translate(gva, .write).outcome == Self.finalViolation(Qual.write | Qual.executable))
    var unsupported = Setup.ept(executeOnly: false)
    unsupported.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    unsupported.mapNested(Self.page, bits: EPTE.x | EPTE.wb)
    #expect(
      try unsupported.translate(gva, .fetch).outcome
        == .eptMisconfiguration(guestPhysical: Self.finalGPA))
  }

  @Test("KVM ffced8922050: EPT has no U/S and no WP — guest CR0.WP = 0 and CPL do not matter")
  func kvmEPTHasNoUserOrWP() throws {
    var s = Self.ept(data: EPTE.r | EPTE.x | EPTE.wb, guestLeaf: X86.p | X86.u | X86.a | X86.d)
    s.controls.wp = false
    // The guest allows a supervisor write to its read-only page (WP = 0); EPT still refuses.
    #expect(
      try s.translate(gva, .write).outcome
        == Self.finalViolation(Qual.write | Qual.readable | Qual.executable))
    // A user and a supervisor read get the same EPT verdict.
    let supervisor = try s.translate(gva, .read)
    let user = try s.translate(gva, .userRead)
    #expect(supervisor.hostPhysical == Self.finalGPA + Setup.nestedOffset)
    #expect(user.outcome == supervisor.outcome)
  }

  @Test("PAE PDPTE loads (read even with EPT A/D) are out of scope: PAE paging is refused")
  func paePagingRefused() throws {
    var machine = Setup.native().machine()
    machine.guest.efer = 0
    #expect(throws: FormatError.self) { try ConcreteModel(machine) }
  }

  // MARK: §3.6 NPT

  @Test(
    "Bochs #234, QEMU nested_pg_mode: the nested walk runs in the host's mode, not the guest's",
    arguments: [(4, 5), (5, 4)])
  func nestedWalkUsesHostMode(guestLevels: Int, hostLevels: Int) throws {
    var s = Setup.npt(guestLevels: guestLevels, nptLevels: hostLevels)
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: X86.prw)
    let t = try s.translate(gva, .read, recording: true)
    #expect(t.hostPhysical == Self.finalGPA + Setup.nestedOffset)
    #expect(
      t.references.filter { $0.stage == .nestedFinal }.map(\.level)
        == Array((1...hostLevels).reversed()))
    #expect(t.references.filter { $0.stage == .guest }.count == guestLevels)
    // Host NXE = 0 with guest NXE = 1: NPT bit 63 is reserved.
    var noNX = Setup.npt(guestLevels: guestLevels, nptLevels: hostLevels, hostNXE: false)
    noNX.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    noNX.mapNested(Self.page, bits: X86.prw | X86.xd)
    #expect(
      try noNX.translate(gva, .read).outcome
        == .nestedPageFault(exitInfo1: PF.p | PF.u | PF.rsvd | NPF.final, exitInfo2: Self.finalGPA))
  }

  @Test("KVM 'TODO: track the cause of the nested page fault': a table fault sets bit 33, not 32")
  func kvmNestedFaultCause() throws {
    var s = Setup.npt()
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: X86.prw)
    let pde = s.guestEntry(of: gva, level: 2)
    s.mapNested(pde & ~0xFFF, bits: 0)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == .nestedPageFault(exitInfo1: PF.w | PF.u | NPF.table, exitInfo2: pde))
  }

  @Test(
    "selftest nested_tdp_fault_test (NPT): {final, PT page} × {unmapped, write-protected}",
    arguments: [false, true], [false, true])
  func selftestNPT(tablePage: Bool, writeProtected: Bool) throws {
    var s = Setup.npt()
    s.map(gva, to: Self.page, bits: X86.prw | X86.a)
    s.mapNested(Self.page, bits: X86.prw)
    let pte = s.guestEntry(of: gva, level: 1)
    let protection = writeProtected ? X86.p | X86.u : 0
    let present = writeProtected ? PF.p : 0
    if tablePage {
      s.mapNested(pte & ~0xFFF, bits: protection)
    } else {
      s.mapNested(Self.page, bits: protection)
    }
    let t = try s.translate(gva, .write)
    let expected: Outcome =
      tablePage
      ? .nestedPageFault(exitInfo1: present | PF.w | PF.u | NPF.table, exitInfo2: pte)
      : .nestedPageFault(exitInfo1: present | PF.w | PF.u | NPF.final, exitInfo2: Self.finalGPA)
    #expect(t.outcome == expected)
  }

  @Test("KVM 147277540bbc fast unprotect: a guest-PT fault is GUEST_PAGE | WRITE | PRESENT")
  func kvmFastUnprotect() throws {
    // A guest *read*; its page-table page is write-protected in NPT (as KVM does to shadow it).
    var s = Setup.npt()
    s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(Self.page, bits: X86.prw)
    let pte = s.guestEntry(of: gva, level: 1)
    s.mapNested(pte & ~0xFFF, bits: X86.p | X86.u)
    let t = try s.translate(gva, .read)
    let nestedGuestPage = NPF.table | PF.w | PF.p
    #expect(t.exitInfo1.map { $0 & nestedGuestPage } == nestedGuestPage)
    #expect(t.outcome == .nestedPageFault(exitInfo1: nestedGuestPage | PF.u, exitInfo2: pte))
  }
}
