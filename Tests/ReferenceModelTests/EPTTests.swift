import Machine
import ReferenceModel
import Testing
import Workloads

/// SEMANTICS §2.2–§2.7: Intel EPT as the second dimension — present entries, misconfiguration
/// versus violation and their order, execute-only and mode-based execute, the exit
/// qualification and EPT accessed/dirty flags.
///
/// Unless a test says otherwise: a 4-level guest over 4-level EPT, `gva` → `page` with a guest
/// leaf P|W|U|A|D and directories P|W|U|A (so the guest writes no A/D), guest tables mapped
/// R|W|X write-back, the data page mapped with the leaf the test gives. The data page sits in
/// EPT PML4 slot 1, so no EPT entry on its path is shared with the guest tables' paths.
@Suite("§2 Intel EPT")
struct EPTTests {
  static let page: UInt64 = 0x80_0123_4000
  static let finalGPA = page | 0x567

  static func setup(
    data: UInt64 = EPTE.all, guestLeaf: UInt64 = X86.prw | X86.a | X86.d,
    accessedDirty: Bool = false, executeOnly: Bool = true, gigabytePages: Bool = true,
    modeBasedExecute: Bool = false, eptDirectory: UInt64 = EPTE.rwx
  ) -> Setup {
    var s = Setup.ept(
      accessedDirty: accessedDirty, executeOnly: executeOnly, gigabytePages: gigabytePages,
      modeBasedExecute: modeBasedExecute, eptDirectory: eptDirectory)
    s.map(gva, to: page, bits: guestLeaf)
    s.mapNested(page, bits: data)
    return s
  }

  /// The outcome of an EPT violation on the final translation of `gva`.
  static func finalViolation(_ q: UInt64) -> Outcome {
    .eptViolation(qualification: q, guestPhysical: finalGPA, guestLinear: gva)
  }

  // MARK: §2.3 V1–V4 and §2.6 bits 0–8 on the final translation

  struct FinalCase: CustomTestStringConvertible, Sendable {
    var name: String
    var leaf: UInt64
    var access: Access
    /// The qualification, or `nil` when the access translates.
    var qualification: UInt64?
    var rule: Rule
    var testDescription: String { name }
  }

  static let finalCases: [FinalCase] = [
    FinalCase(name: "read, R", leaf: EPTE.r | EPTE.wb, access: .read, rule: .translated),
    FinalCase(
      name: "write, R: V3", leaf: EPTE.r | EPTE.wb, access: .write,
      qualification: Qual.write | Qual.readable | Qual.finalLinear, rule: .eptWriteDenied),
    FinalCase(
      name: "user write, R: V3 (EPT has no user/supervisor distinction)", leaf: EPTE.r | EPTE.wb,
      access: .userWrite, qualification: Qual.write | Qual.readable | Qual.finalLinear,
      rule: .eptWriteDenied),
    FinalCase(
      name: "fetch, R: V4", leaf: EPTE.r | EPTE.wb, access: .fetch,
      qualification: Qual.fetch | Qual.readable | Qual.finalLinear, rule: .eptExecuteDenied),
    FinalCase(
      name: "fetch, RW: V4", leaf: EPTE.r | EPTE.w | EPTE.wb, access: .userFetch,
      qualification: Qual.fetch | Qual.readable | Qual.writable | Qual.finalLinear,
      rule: .eptExecuteDenied),
    FinalCase(
      name: "write, RX: V3", leaf: EPTE.r | EPTE.x | EPTE.wb, access: .write,
      qualification: Qual.write | Qual.readable | Qual.executable | Qual.finalLinear,
      rule: .eptWriteDenied),
    FinalCase(
      name: "implicit write, RX: V3", leaf: EPTE.r | EPTE.x | EPTE.wb, access: .implicitWrite,
      qualification: Qual.write | Qual.readable | Qual.executable | Qual.finalLinear,
      rule: .eptWriteDenied),
    FinalCase(
      name: "read, X (execute-only supported): V2", leaf: EPTE.x | EPTE.wb, access: .read,
      qualification: Qual.read | Qual.executable | Qual.finalLinear, rule: .eptReadDenied),
    FinalCase(
      name: "write, X: V3", leaf: EPTE.x | EPTE.wb, access: .userWrite,
      qualification: Qual.write | Qual.executable | Qual.finalLinear, rule: .eptWriteDenied),
    FinalCase(name: "fetch, X", leaf: EPTE.x | EPTE.wb, access: .fetch, rule: .translated),
    FinalCase(
      name: "read, not present: V1, bits 3–5 clear", leaf: EPTE.wb, access: .read,
      qualification: Qual.read | Qual.finalLinear, rule: .eptNotPresent),
    FinalCase(
      name: "write, not present: V1", leaf: 0, access: .write,
      qualification: Qual.write | Qual.finalLinear,
      rule: .eptNotPresent),
    FinalCase(
      name: "fetch, not present: V1", leaf: 0, access: .userFetch,
      qualification: Qual.fetch | Qual.finalLinear, rule: .eptNotPresent),
    FinalCase(name: "write, RWX", leaf: EPTE.all, access: .userWrite, rule: .translated),
  ]

  @Test(
    "The final translation needs R, W or X by access kind; the qualification reports it",
    arguments: finalCases)
  func finalTranslation(_ c: FinalCase) throws {
    let t = try Self.setup(data: c.leaf).translate(gva, c.access)
    if let q = c.qualification {
      #expect(t.outcome == Self.finalViolation(q))
      #expect(t.decidingStage == .nestedFinal)
    } else {
      #expect(t.outcome == .translated(hostPhysical: Self.finalGPA + Setup.nestedOffset))
    }
    #expect(t.decidingRule == c.rule)
  }

  @Test("Qualification bits 3–5 are the AND of R, W, X over every EPT level, not the leaf's")
  func rightsAreAndedOverLevels() throws {
    var s = Self.setup()
    s.setNestedBits(of: Self.page, level: 2, to: EPTE.r | EPTE.x)  // the EPT PDE: no W
    s.setNestedBits(of: Self.page, level: 3, to: EPTE.r | EPTE.w)  // the EPT PDPTE: no X
    let t = try s.translate(gva, .write)
    #expect(t.outcome == Self.finalViolation(Qual.write | Qual.readable | Qual.finalLinear))
    let fetch = try s.translate(gva, .fetch)
    #expect(fetch.outcome == Self.finalViolation(Qual.fetch | Qual.readable | Qual.finalLinear))
  }

  @Test("An execute-only EPT PDE denies data reads below it although the leaf has R (V2)")
  func readIsAndedOverLevels() throws {
    var s = Self.setup()
    s.setNestedBits(of: Self.page, level: 2, to: EPTE.x)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == Self.finalViolation(Qual.read | Qual.executable | Qual.finalLinear))
    #expect(t.decidingRule == .eptReadDenied)
    #expect(try s.translate(gva, .fetch).hostPhysical == Self.finalGPA + Setup.nestedOffset)
  }

  @Test(
    "A not-present EPT entry at any level is V1; rights read so far are ANDed with zero",
    arguments: 1...4)
  func notPresentAtEveryLevel(level: Int) throws {
    var s = Self.setup()
    s.setNestedBits(of: Self.page, level: level, to: 0)
    let t = try s.translate(gva, .read)
    #expect(t.outcome == Self.finalViolation(Qual.read | Qual.finalLinear))
    #expect(t.decidingRule == .eptNotPresent)
    #expect(t.level == UInt64(level))
  }

  // MARK: §2.2 Presence

  @Test(
    "An entry with bits 2:0 = 000 is not present whatever its other bits",
    arguments: [EPTE.wb | EPTE.ps, EPTE.a | EPTE.d, X86.bit(51) | X86.bit(6), EPTE.xu])
  func notPresentIgnoresOtherBits(bits: UInt64) throws {
    for level in 1...4 {
      var s = Self.setup()
      s.setNestedBits(of: Self.page, level: level, to: bits)
      let t = try s.translate(gva, .read)
      #expect(t.outcome == Self.finalViolation(Qual.read | Qual.finalLinear), "level \(level)")
      #expect(t.decidingRule == .eptNotPresent)
    }
  }

  @Test("V1 stops the walk: a misconfigured entry below a not-present one is never examined")
  func notPresentStopsBeforeMisconfiguration() throws {
    var s = Self.setup(data: EPTE.rwx | EPTE.type(2))  // a bad memory type in the leaf
    #expect(
      try s.translate(gva, .read).outcome == .eptMisconfiguration(guestPhysical: Self.finalGPA))
    s.setNestedBits(of: Self.page, level: 2, to: 0)  // the PDE keeps its address, loses R/W/X
    let t = try s.translate(gva, .read)
    #expect(t.outcome == Self.finalViolation(Qual.read | Qual.finalLinear))
    #expect(t.level == 2)
  }

  // MARK: §2.4 Guest paging-structure accesses, §2.6 bits 0, 1, 7, 8

  @Test(
    "A guest paging-entry read reports bit 0, plus bit 1 with EPTP[6]; bit 7 set, bit 8 clear",
    arguments: [false, true], 1...4)
  func guestTableRead(accessedDirty: Bool, level: Int) throws {
    var s = Self.setup(accessedDirty: accessedDirty)
    let entry = s.guestEntry(of: gva, level: level)
    s.mapNested(entry & ~0xFFF, bits: 0)  // the guest table at `level` is unmapped
    let t = try s.translate(gva, .fetch)
    let access = accessedDirty ? Qual.read | Qual.write : Qual.read
    #expect(
      t.outcome
        == .eptViolation(
          qualification: access | Qual.linearValid, guestPhysical: entry, guestLinear: gva))
    #expect(t.decidingStage == .nestedTable)
    #expect(t.decidingRule == .eptNotPresent)
  }

  @Test("With EPTP[6] = 1 a guest paging-entry read needs W: a read-only table page exits")
  func guestTableReadIsWriteWithAccessedDirty() throws {
    var s = Self.setup(accessedDirty: true)
    let pml4e = s.guestEntry(of: gva, level: 4)
    s.mapNested(pml4e & ~0xFFF, bits: EPTE.r | EPTE.wb)
    let t = try s.translate(gva, .read)
    #expect(
      t.outcome
        == .eptViolation(
          qualification: Qual.read | Qual.write | Qual.readable | Qual.linearValid,
          guestPhysical: pml4e, guestLinear: gva))
    #expect(t.decidingRule == .eptWriteDenied)
    // With EPTP[6] = 0 the same read-only table page is fine (the guest writes no A/D here).
    var plain = Self.setup(accessedDirty: false)
    plain.mapNested(pml4e & ~0xFFF, bits: EPTE.r | EPTE.wb)
    #expect(try plain.translate(gva, .read).hostPhysical == Self.finalGPA + Setup.nestedOffset)
  }

  @Test("With EPTP[6] = 0 a guest paging-entry read needs R: an execute-only table page exits")
  func guestTableReadNeedsRead() throws {
    var s = Self.setup()
    let pde = s.guestEntry(of: gva, level: 2)
    s.mapNested(pde & ~0xFFF, bits: EPTE.x | EPTE.wb)
    let t = try s.translate(gva, .read)
    #expect(
      t.outcome
        == .eptViolation(
          qualification: Qual.read | Qual.executable | Qual.linearValid, guestPhysical: pde,
          guestLinear: gva))
    #expect(t.decidingRule == .eptReadDenied)
  }

  @Test(
    "A guest A/D write needs W (EPTP[6] = 0): bit 1, bit 0 as the IMPL choice, bit 8 clear",
    arguments: [false, true])
  func guestAccessedDirtyWrite(readBit: Bool) throws {
    // The guest PTE lacks D; a write must set it through a read-only EPT mapping.
    var s = Self.setup(guestLeaf: X86.prw | X86.a)
    let pte = s.guestEntry(of: gva, level: 1)
    s.mapNested(pte & ~0xFFF, bits: EPTE.r | EPTE.x | EPTE.wb)
    #expect(try s.translate(gva, .read).hostPhysical != nil)  // reads need no A/D write
    var choices = Choices<Concrete>.kvm
    choices.readBitOnAccessedDirtyWrite = readBit
    let t = try s.translate(gva, .write, choices: choices)
    let q =
      Qual.write | Qual.readable | Qual.executable | Qual.linearValid | (readBit ? Qual.read : 0)
    #expect(t.outcome == .eptViolation(qualification: q, guestPhysical: pte, guestLinear: gva))
    #expect(t.decidingStage == .nestedTable)
    #expect(t.decidingRule == .eptWriteDenied)
  }

  @Test("With EPTP[6] = 1 the same read-only table page exits on the read, before any A/D write")
  func guestAccessedDirtyWriteWithAccessedDirty() throws {
    var s = Self.setup(guestLeaf: X86.prw | X86.a, accessedDirty: true)
    let pte = s.guestEntry(of: gva, level: 1)
    s.mapNested(pte & ~0xFFF, bits: EPTE.r | EPTE.x | EPTE.wb)
    for choices in Choices<Concrete>.all {
      let t = try s.translate(gva, .write, choices: choices)
      let q = Qual.read | Qual.write | Qual.readable | Qual.executable | Qual.linearValid
      #expect(t.outcome == .eptViolation(qualification: q, guestPhysical: pte, guestLinear: gva))
    }
  }

  // MARK: §2.6 bits 9–11 (advanced, UNVERIFIED: a choice)

  @Test("Advanced qualification bits 9–11 report the guest rights of the linear address")
  func advancedQualification() throws {
    var choices = Choices<Concrete>.kvm
    choices.advancedQualification = true
    // A user, writable, executable guest page.
    let open = try Self.setup(data: EPTE.wb).translate(gva, .read, choices: choices)
    #expect(
      open.qualification
        == Qual.read | Qual.finalLinear | Qual.userAddress | Qual.writableAddress
        | Qual.executableAddress)
    // A supervisor, read-only, XD guest page.
    let closed = try Self.setup(data: EPTE.wb, guestLeaf: X86.p | X86.a | X86.xd)
      .translate(gva, .read, choices: choices)
    #expect(closed.qualification == Qual.read | Qual.finalLinear)
    // Without the choice the bits stay clear.
    let plain = try Self.setup(data: EPTE.wb).translate(gva, .read)
    #expect(plain.qualification == Qual.read | Qual.finalLinear)
    // Never on a guest paging-structure access (bit 8 = 0).
    var table = Self.setup()
    table.mapNested(table.guestEntry(of: gva, level: 3) & ~0xFFF, bits: 0)
    #expect(
      try table.translate(gva, .read, choices: choices).qualification == Qual.read
        | Qual.linearValid)
  }

  // MARK: §2.2 Mode-based execute control (XS, XU)

  @Test("With MBEC, bit 10 alone makes an entry present; without MBEC it does not")
  func userExecuteMakesPresent() throws {
    let directory = EPTE.rwx | EPTE.xu
    let with = Self.setup(data: EPTE.xu | EPTE.wb, modeBasedExecute: true, eptDirectory: directory)
    #expect(try with.translate(gva, .userFetch).hostPhysical == Self.finalGPA + Setup.nestedOffset)
    let read = try with.translate(gva, .read)
    #expect(read.outcome == Self.finalViolation(Qual.read | Qual.userExecutable | Qual.finalLinear))
    #expect(read.decidingRule == .eptReadDenied)
    let without = Self.setup(data: EPTE.xu | EPTE.wb, eptDirectory: directory)
    let t = try without.translate(gva, .userFetch)
    #expect(t.outcome == Self.finalViolation(Qual.fetch | Qual.finalLinear))
    #expect(t.decidingRule == .eptNotPresent)
  }

  struct ModeBasedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var guestLeaf: UInt64
    var eptLeaf: UInt64
    var access: Access
    var qualification: UInt64?
    var testDescription: String { name }
  }

  static let userPage = X86.prw | X86.a | X86.d
  static let supervisorPage = X86.p | X86.w | X86.a | X86.d

  static let modeBased: [ModeBasedCase] = [
    ModeBasedCase(
      name: "user fetch, user-mode address, XU", guestLeaf: userPage,
      eptLeaf: EPTE.r | EPTE.xu | EPTE.wb, access: .userFetch),
    ModeBasedCase(
      name: "user fetch, user-mode address, XS only: denied, bit 5 set, bit 6 clear",
      guestLeaf: userPage, eptLeaf: EPTE.r | EPTE.x | EPTE.wb, access: .userFetch,
      qualification: Qual.fetch | Qual.readable | Qual.executable | Qual.finalLinear),
    ModeBasedCase(
      name: "supervisor fetch from a user-mode address needs XU too (the address decides)",
      guestLeaf: userPage, eptLeaf: EPTE.r | EPTE.x | EPTE.wb, access: .fetch,
      qualification: Qual.fetch | Qual.readable | Qual.executable | Qual.finalLinear),
    ModeBasedCase(
      name: "supervisor fetch, supervisor-mode address, XS", guestLeaf: supervisorPage,
      eptLeaf: EPTE.r | EPTE.x | EPTE.wb, access: .fetch),
    ModeBasedCase(
      name: "supervisor fetch, supervisor-mode address, XU only: denied, bit 6 set",
      guestLeaf: supervisorPage, eptLeaf: EPTE.r | EPTE.xu | EPTE.wb, access: .fetch,
      qualification: Qual.fetch | Qual.readable | Qual.userExecutable | Qual.finalLinear),
    ModeBasedCase(
      name: "a read needs R, not XS or XU", guestLeaf: userPage,
      eptLeaf: EPTE.x | EPTE.xu | EPTE.wb, access: .userRead,
      qualification: Qual.read | Qual.executable | Qual.userExecutable | Qual.finalLinear),
  ]

  @Test(
    "With MBEC a fetch needs XU for a user-mode linear address and XS otherwise",
    arguments: modeBased)
  func modeBasedExecute(_ c: ModeBasedCase) throws {
    let s = Self.setup(
      data: c.eptLeaf, guestLeaf: c.guestLeaf, modeBasedExecute: true,
      eptDirectory: EPTE.rwx | EPTE.xu)
    let t = try s.translate(gva, c.access)
    if let q = c.qualification {
      #expect(t.outcome == Self.finalViolation(q))
    } else {
      #expect(t.hostPhysical == Self.finalGPA + Setup.nestedOffset)
    }
  }

  @Test("With MBEC, XU must hold in every EPT entry on the path; without MBEC bit 6 is clear")
  func userExecuteIsAndedOverLevels() throws {
    // EPT directories R|W|X without XU: a user-mode fetch is denied although the leaf has XU.
    let s = Self.setup(data: EPTE.r | EPTE.x | EPTE.xu | EPTE.wb, modeBasedExecute: true)
    let t = try s.translate(gva, .userFetch)
    #expect(
      t.outcome
        == Self.finalViolation(Qual.fetch | Qual.readable | Qual.executable | Qual.finalLinear))
    // Without MBEC, bit 10 is ignored and bit 6 of the qualification stays clear.
    let plain = Self.setup(data: EPTE.r | EPTE.xu | EPTE.wb, eptDirectory: EPTE.rwx | EPTE.xu)
    let u = try plain.translate(gva, .userFetch)
    #expect(u.outcome == Self.finalViolation(Qual.fetch | Qual.readable | Qual.finalLinear))
  }

  // MARK: §2.5 EPT accessed and dirty flags

  /// The EPT entries read for `gpa` in the machine of `s` (a test-side walk of the tables).
  static func eptEntries(_ s: Setup, _ gpa: UInt64) -> [UInt64] {
    radixPath(s.machine().memory, root: 0x1000, levels: 4, address: gpa)
  }

  /// The EPT writes (stage other than the guest's) of a translation, address → bits.
  static func eptWrites(_ t: Translation<Concrete>) -> [UInt64: UInt64] {
    var writes: [UInt64: UInt64] = [:]
    for u in t.performedUpdates where u.stage != .guest { writes[u.address, default: 0] |= u.bits }
    return writes
  }

  @Test(
    "With EPTP[6], A is set in every EPT entry used and D in each leaf written, guest tables' too",
    arguments: [Access.read, .write])
  func accessedDirtyFlags(access: Access) throws {
    let s = Self.setup(accessedDirty: true)
    let t = try s.translate(gva, access)
    #expect(t.hostPhysical == Self.finalGPA + Setup.nestedOffset)
    var expected: [UInt64: UInt64] = [:]
    for table in s.guest.tables {
      let path = Self.eptEntries(s, table)
      for entry in path { expected[entry, default: 0] |= EPTE.a }
      // Guest paging-entry reads count as writes: the EPT leaf of each guest table gets D.
      if let leaf = path.last { expected[leaf, default: 0] |= EPTE.d }
    }
    let data = Self.eptEntries(s, Self.page)
    for entry in data { expected[entry, default: 0] |= EPTE.a }
    if access.kind == .write, let leaf = data.last { expected[leaf, default: 0] |= EPTE.d }
    #expect(Self.eptWrites(t) == expected)
  }

  @Test("Without EPTP[6], EPT bits 8 and 9 are never written")
  func noAccessedDirtyWithoutEnable() throws {
    let t = try Self.setup(guestLeaf: X86.prw).translate(gva, .write)
    #expect(t.hostPhysical != nil)
    #expect(Self.eptWrites(t).isEmpty)
    // The guest's own A/D writes still happen.
    #expect(t.performedUpdates.contains { $0.stage == .guest })
  }

  @Test("With EPTP[6], nothing is written where EPT A (and D) are already set")
  func noEPTWriteWhenSet() throws {
    var s = Self.setup(
      data: EPTE.all | EPTE.a | EPTE.d, accessedDirty: true, eptDirectory: EPTE.rwx | EPTE.a)
    s.tableLeaf = EPTE.rwx | EPTE.wb | EPTE.a | EPTE.d
    let t = try s.translate(gva, .write)
    #expect(t.hostPhysical != nil)
    #expect(Self.eptWrites(t).isEmpty)
  }

  @Test("A faulting translation sets no EPT A/D in the path it failed on")
  func noAccessedDirtyOnViolation() throws {
    let s = Self.setup(data: EPTE.r | EPTE.wb, accessedDirty: true)
    let t = try s.translate(gva, .write)
    #expect(t.qualification != nil)
    let path = Set(Self.eptEntries(s, Self.page))
    #expect(path.count == 4)
    #expect(Self.eptWrites(t).keys.allSatisfy { !path.contains($0) })
    #expect(!Self.eptWrites(t).isEmpty)  // the guest tables' paths were written
  }
}
