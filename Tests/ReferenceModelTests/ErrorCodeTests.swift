import Machine
import ReferenceModel
import Testing

/// SEMANTICS §1.6: the page-fault error code and CR2. W/R, U/S and I/D describe the access,
/// not the page, and are reported for every kind of fault; P tells a not-present fault from
/// the rest; RSVD and PK name their causes.
@Suite("§1.6 Page-fault error code")
struct ErrorCodeTests {
  /// The access bits of the error code for each access, with SMEP = 0 and NXE = 1.
  static let accessBits: [(Access, UInt64)] = [
    (.read, 0),
    (.write, PF.w),
    (.fetch, PF.id),
    (.userRead, PF.u),
    (.userWrite, PF.w | PF.u),
    (.userFetch, PF.u | PF.id),
    (.implicitRead, 0),
    (.implicitWrite, PF.w),
  ]

  @Test("A not-present fault has P = 0 and still reports W/R, U/S and I/D", arguments: accessBits)
  func notPresent(access: Access, bits: UInt64) throws {
    let s = Setup.native()  // nothing mapped
    let t = try s.translate(gva, access)
    #expect(t.outcome == .pageFault(errorCode: bits, linearAddress: gva))
  }

  @Test(
    "A reserved-bit fault has P = 1 and RSVD = 1 besides the access bits", arguments: accessBits)
  func reservedBit(access: Access, bits: UInt64) throws {
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.prw | X86.bit(51))
    let t = try s.translate(gva, access)
    #expect(t.outcome == .pageFault(errorCode: PF.p | PF.rsvd | bits, linearAddress: gva))
  }

  @Test("A protection fault has P = 1, RSVD = 0 besides the access bits", arguments: accessBits)
  func protection(access: Access, bits: UInt64) throws {
    // A read-only XD page under SMAP, supervisor-mode for user accesses (rule 1) and user-mode
    // for the others (rule 5, or rule 3 for a fetch): every access breaks some rule.
    var s = Setup.native()
    s.controls.smap = true
    let user = access.user ? 0 : X86.u
    s.map(gva, to: dataGPA, bits: X86.p | user | X86.xd)
    let t = try s.translate(gva, access)
    #expect(t.outcome == .pageFault(errorCode: PF.p | bits, linearAddress: gva))
  }

  /// Fetches and whether I/D is reported, by (SMEP, NXE).
  static let instructionFetch: [(Bool, Bool, UInt64)] = [
    (false, false, 0),
    (false, true, PF.id),
    (true, false, PF.id),
    (true, true, PF.id),
  ]

  @Test(
    "I/D is reported for a fetch only when CR4.SMEP = 1 or EFER.NXE = 1",
    arguments: instructionFetch)
  func instructionFetchBit(smep: Bool, nxe: Bool, id: UInt64) throws {
    var s = Setup.native()
    s.controls.smep = smep
    s.controls.nxe = nxe
    let notPresent = try s.translate(gva, .userFetch)
    #expect(notPresent.outcome == .pageFault(errorCode: PF.u | id, linearAddress: gva))
    // A protection fault reports it the same way (user fetch from a supervisor page).
    s.map(gva, to: dataGPA, bits: X86.p)
    let denied = try s.translate(gva, .userFetch)
    #expect(denied.outcome == .pageFault(errorCode: PF.p | PF.u | id, linearAddress: gva))
    // Reads and writes never report I/D.
    let write = try s.translate(gva, .userWrite)
    #expect(write.outcome == .pageFault(errorCode: PF.p | PF.w | PF.u, linearAddress: gva))
  }

  @Test("An implicit supervisor access reports U/S = 0 even at CPL 3")
  func implicitAccessIsSupervisor() throws {
    // The same supervisor-only page: a user read faults with U/S = 1; an implicit read, which
    // is supervisor-mode at any CPL, translates; on a not-present page it reports U/S = 0.
    var s = Setup.native()
    s.map(gva, to: dataGPA, bits: X86.p | X86.w)
    #expect(try s.translate(gva, .userRead).errorCode == PF.p | PF.u)
    #expect(try s.translate(gva, .implicitRead).hostPhysical == dataGPA | 0x567)
    s.setGuestBits(of: gva, level: 1, to: 0)
    #expect(try s.translate(gva, .implicitWrite).errorCode == PF.w)
  }

  @Test("CR2 is the faulting linear address itself, offset bits included")
  func linearAddressIsReported() throws {
    let s = Setup.native()
    for address: UInt64 in [gva, gva + 1, 0xFFFF_FFFF_FFFF_FFF8, 0x0000_7FFF_FFFF_FFFF] {
      let t = try s.translate(address, .read)
      #expect(t.outcome == .pageFault(errorCode: 0, linearAddress: address))
    }
  }

  @Test("PK is set only by the key check; no other fault sets it")
  func keyBitOnlyFromKeys() throws {
    var s = Setup.native()
    s.controls.pke = true
    s.controls.pkru = 0x5555_5555  // AD for every key
    s.map(gva, to: dataGPA, bits: X86.prw | X86.key(7))
    #expect(try s.translate(gva, .userRead).errorCode == PF.p | PF.u | PF.pk)
    // A fetch is not key-checked: no fault, no PK.
    #expect(try s.translate(gva, .userFetch).hostPhysical == dataGPA | 0x567)
    // A reserved-bit fault on the same page reports no PK: the key check never ran.
    s.setGuestBits(of: gva, level: 1, to: X86.prw | X86.key(7) | X86.bit(51))
    #expect(try s.translate(gva, .userRead).errorCode == PF.p | PF.u | PF.rsvd)
  }
}
