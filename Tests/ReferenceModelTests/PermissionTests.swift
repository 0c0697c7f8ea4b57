import Machine
import ReferenceModel
import Testing

/// SEMANTICS §1.5: the permission rules, evaluated after a complete valid walk over the rights
/// accumulated on the whole path (U = AND U/S, W = AND R/W, XD = OR XD, key from the leaf).
@Suite("§1.5 Permission rules")
struct PermissionTests {
  /// One permission case: the flags of PML4E, PDPTE, PDE and PTE (top-down), the controls, the
  /// access, and the expected error code (`nil`: the access translates) and deciding rule.
  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var path: [UInt64]
    var controls = Controls()
    var access: Access
    var errorCode: UInt64?
    var rule: Rule
    var testDescription: String { name }
  }

  static let all = X86.prw | X86.a | X86.d
  static let supervisor = X86.p | X86.w | X86.a | X86.d
  static let readOnly = X86.p | X86.u | X86.a | X86.d

  static func check(_ c: Case) throws {
    let t = try Setup.path(c.path, controls: c.controls).translate(gva, c.access)
    if let code = c.errorCode {
      #expect(t.outcome == .pageFault(errorCode: code, linearAddress: gva))
    } else {
      #expect(t.outcome == .translated(hostPhysical: dataGPA | 0x567))
    }
    #expect(t.decidingRule == c.rule)
  }

  // MARK: Rule 1

  static let rule1: [Case] = [
    Case(
      name: "user read of a supervisor page (U/S = 0 in the PTE)",
      path: [all, all, all, supervisor], access: .userRead, errorCode: PF.p | PF.u,
      rule: .userAccessToSupervisorAddress),
    Case(
      name: "U/S = 0 in the PML4E alone makes the address supervisor-mode",
      path: [supervisor, all, all, all], access: .userRead, errorCode: PF.p | PF.u,
      rule: .userAccessToSupervisorAddress),
    Case(
      name: "user write to a supervisor page", path: [all, all, supervisor, all],
      access: .userWrite, errorCode: PF.p | PF.w | PF.u, rule: .userAccessToSupervisorAddress),
    Case(
      name: "user fetch from a supervisor page", path: [all, supervisor, all, all],
      access: .userFetch, errorCode: PF.p | PF.u | PF.id, rule: .userAccessToSupervisorAddress),
    Case(
      name: "supervisor read of a supervisor page is allowed",
      path: [supervisor, all, all, supervisor], access: .read, rule: .translated),
    Case(
      name: "user read of a user page is allowed", path: [all, all, all, all],
      access: .userRead, rule: .translated),
  ]

  @Test("Rule 1: a user-mode access to a supervisor-mode address faults", arguments: rule1)
  func userAccessToSupervisorAddress(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 2

  static let rule2: [Case] = [
    Case(
      name: "user write with R/W = 0 in the PTE", path: [all, all, all, readOnly],
      access: .userWrite, errorCode: PF.p | PF.w | PF.u, rule: .userWriteToReadOnly),
    Case(
      name: "user write with R/W = 0 in the PDPTE alone", path: [all, readOnly, all, all],
      access: .userWrite, errorCode: PF.p | PF.w | PF.u, rule: .userWriteToReadOnly),
    Case(
      name: "user write with R/W = 0 faults with CR0.WP = 0 too",
      path: [all, all, readOnly, all], controls: Controls(wp: false), access: .userWrite,
      errorCode: PF.p | PF.w | PF.u, rule: .userWriteToReadOnly),
    Case(
      name: "user read of a read-only page is allowed", path: [readOnly, readOnly, all, readOnly],
      access: .userRead, rule: .translated),
  ]

  @Test(
    "Rule 2: a user-mode write needs R/W = 1 on the whole path, whatever CR0.WP", arguments: rule2)
  func userWriteToReadOnly(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 3

  static let rule3: [Case] = [
    Case(
      name: "supervisor fetch with XD in the PTE", path: [all, all, all, all | X86.xd],
      access: .fetch, errorCode: PF.p | PF.id, rule: .fetchFromExecuteDisabled),
    Case(
      name: "user fetch with XD in the PML4E alone", path: [all | X86.xd, all, all, all],
      access: .userFetch, errorCode: PF.p | PF.u | PF.id, rule: .fetchFromExecuteDisabled),
    Case(
      name: "XD forbids fetches, not reads", path: [all, all, all | X86.xd, all | X86.xd],
      access: .userRead, rule: .translated),
    Case(
      name: "XD forbids fetches, not writes", path: [all, all | X86.xd, all, all],
      access: .write, rule: .translated),
  ]

  @Test(
    "Rule 3: with EFER.NXE = 1, a fetch faults if XD = 1 anywhere on the path", arguments: rule3)
  func fetchFromExecuteDisabled(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 4

  static let rule4: [Case] = [
    Case(
      name: "supervisor fetch from a user page, SMEP", path: [all, all, all, all],
      controls: Controls(smep: true), access: .fetch, errorCode: PF.p | PF.id,
      rule: .supervisorExecutionPrevention),
    Case(
      name: "SMEP also applies with CR0.WP = 0 and EFER.NXE = 0 (I/D still reported)",
      path: [all, all, all, all], controls: Controls(wp: false, smep: true, nxe: false),
      access: .fetch, errorCode: PF.p | PF.id, rule: .supervisorExecutionPrevention),
    Case(
      name: "without SMEP the supervisor fetch from a user page is allowed",
      path: [all, all, all, all], access: .fetch, rule: .translated),
    Case(
      name: "SMEP allows a supervisor fetch from a supervisor-mode address",
      path: [all, supervisor, all, all], controls: Controls(smep: true), access: .fetch,
      rule: .translated),
    Case(
      name: "SMEP does not restrict user fetches", path: [all, all, all, all],
      controls: Controls(smep: true), access: .userFetch, rule: .translated),
    Case(
      name: "SMEP does not restrict supervisor reads of user pages", path: [all, all, all, all],
      controls: Controls(smep: true), access: .read, rule: .translated),
  ]

  @Test("Rule 4: CR4.SMEP forbids supervisor fetches from user-mode addresses", arguments: rule4)
  func supervisorExecutionPrevention(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 5

  static let rule5: [Case] = [
    Case(
      name: "supervisor read of a user page, SMAP, AC = 0", path: [all, all, all, all],
      controls: Controls(smap: true), access: .read, errorCode: PF.p,
      rule: .supervisorAccessPrevention),
    Case(
      name: "supervisor write to a user page, SMAP, AC = 0", path: [all, all, all, all],
      controls: Controls(smap: true), access: .write, errorCode: PF.p | PF.w,
      rule: .supervisorAccessPrevention),
    Case(
      name: "EFLAGS.AC = 1 rescues an explicit supervisor read", path: [all, all, all, all],
      controls: Controls(smap: true, ac: true), access: .read, rule: .translated),
    Case(
      name: "EFLAGS.AC = 1 rescues an explicit supervisor write", path: [all, all, all, all],
      controls: Controls(smap: true, ac: true), access: .write, rule: .translated),
    Case(
      name: "EFLAGS.AC = 1 does not rescue an implicit read", path: [all, all, all, all],
      controls: Controls(smap: true, ac: true), access: .implicitRead, errorCode: PF.p,
      rule: .supervisorAccessPrevention),
    Case(
      name: "EFLAGS.AC = 1 does not rescue an implicit write", path: [all, all, all, all],
      controls: Controls(smap: true, ac: true), access: .implicitWrite,
      errorCode: PF.p | PF.w, rule: .supervisorAccessPrevention),
    Case(
      name: "SMAP does not restrict fetches", path: [all, all, all, all],
      controls: Controls(smap: true), access: .fetch, rule: .translated),
    Case(
      name: "SMAP does not restrict supervisor pages", path: [all, all, supervisor, all],
      controls: Controls(smap: true), access: .implicitWrite, rule: .translated),
    Case(
      name: "SMAP does not restrict user accesses", path: [all, all, all, all],
      controls: Controls(smap: true), access: .userWrite, rule: .translated),
    Case(
      name: "without SMAP an implicit read of a user page is allowed", path: [all, all, all, all],
      access: .implicitRead, rule: .translated),
  ]

  @Test(
    "Rule 5: SMAP denies a supervisor data access to a user page unless AC = 1 and it is explicit",
    arguments: rule5)
  func supervisorAccessPrevention(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 6

  static let rule6: [Case] = [
    Case(
      name: "supervisor write, R/W = 0 in the PTE, WP = 1", path: [all, all, all, readOnly],
      access: .write, errorCode: PF.p | PF.w, rule: .supervisorWriteToReadOnly),
    Case(
      name: "supervisor write, R/W = 0 in the PML4E alone, WP = 1",
      path: [readOnly, all, all, all], access: .write, errorCode: PF.p | PF.w,
      rule: .supervisorWriteToReadOnly),
    Case(
      name: "supervisor write to a read-only supervisor page, WP = 1",
      path: [all, all, all, X86.p | X86.a | X86.d], access: .write, errorCode: PF.p | PF.w,
      rule: .supervisorWriteToReadOnly),
    Case(
      name: "implicit write to a read-only page, WP = 1", path: [all, all, readOnly, all],
      access: .implicitWrite, errorCode: PF.p | PF.w, rule: .supervisorWriteToReadOnly),
    Case(
      name: "with WP = 0 a supervisor write to a read-only user page succeeds",
      path: [all, all, all, readOnly], controls: Controls(wp: false), access: .write,
      rule: .translated),
    Case(
      name: "with WP = 0 a supervisor write to a read-only supervisor page succeeds",
      path: [all, X86.p | X86.a, all, all], controls: Controls(wp: false), access: .write,
      rule: .translated),
    Case(
      name: "with WP = 0 the write is still subject to SMAP (rule 5)",
      path: [all, all, all, readOnly], controls: Controls(wp: false, smap: true),
      access: .write, errorCode: PF.p | PF.w, rule: .supervisorAccessPrevention),
    Case(
      name: "a supervisor read of a read-only page is allowed", path: [readOnly, all, all, all],
      access: .read, rule: .translated),
  ]

  @Test("Rule 6: with CR0.WP = 1 a supervisor write needs R/W = 1 on the path", arguments: rule6)
  func supervisorWriteToReadOnly(_ c: Case) throws { try Self.check(c) }

  // MARK: Rule 7

  /// PKRU/PKRS with AD for key `k` (bit 2k) and WD for key `w` (bit 2w + 1).
  static func accessDisable(_ k: UInt64) -> UInt64 { 1 << (2 * k) }
  static func writeDisable(_ k: UInt64) -> UInt64 { 1 << (2 * k + 1) }

  static let rule7: [Case] = [
    Case(
      name: "PKRU AD_3 denies a user read of a key-3 user page",
      path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: accessDisable(3)), access: .userRead,
      errorCode: PF.p | PF.u | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRU AD_3 denies a supervisor read of a key-3 user page (SMAP off)",
      path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: accessDisable(3)),
      access: .read, errorCode: PF.p | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRU WD_3 denies a user write", path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: writeDisable(3)), access: .userWrite,
      errorCode: PF.p | PF.w | PF.u | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRU WD_3 allows a user read", path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: writeDisable(3)), access: .userRead, rule: .translated),
    Case(
      name: "PKRU WD_3 denies a supervisor write with WP = 1",
      path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: writeDisable(3)), access: .write,
      errorCode: PF.p | PF.w | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRU WD_3 is ignored by a supervisor write with WP = 0",
      path: [all, all, all, all | X86.key(3)],
      controls: Controls(wp: false, pke: true, pkru: writeDisable(3)), access: .write,
      rule: .translated),
    Case(
      name: "keys never restrict fetches", path: [all, all, all, all | X86.key(3)],
      controls: Controls(pke: true, pkru: accessDisable(3) | writeDisable(3)),
      access: .userFetch, rule: .translated),
    Case(
      name: "with CR4.PKE = 0 PKRU is not consulted", path: [all, all, all, all | X86.key(3)],
      controls: Controls(pkru: accessDisable(3)), access: .userRead, rule: .translated),
    Case(
      name: "the key comes from the leaf: a key in the PDE is ignored",
      path: [all, all, all | X86.key(3), all],
      controls: Controls(pke: true, pkru: accessDisable(3)),
      access: .userRead, rule: .translated),
    Case(
      name: "the leaf's key 0 is checked even when the PDE names key 3",
      path: [all, all, all | X86.key(3), all],
      controls: Controls(pke: true, pkru: accessDisable(0)),
      access: .userRead, errorCode: PF.p | PF.u | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRS AD_2 denies a supervisor read of a key-2 supervisor page",
      path: [all, all, all, supervisor | X86.key(2)],
      controls: Controls(pks: true, pkrs: accessDisable(2)), access: .read,
      errorCode: PF.p | PF.pk, rule: .protectionKey),
    Case(
      name: "PKRS applies only with CR4.PKS = 1", path: [all, all, all, supervisor | X86.key(2)],
      controls: Controls(pkrs: accessDisable(2)), access: .read, rule: .translated),
    Case(
      name: "PKRU does not govern supervisor-mode addresses",
      path: [all, all, all, supervisor | X86.key(2)],
      controls: Controls(pke: true, pkru: accessDisable(2)), access: .read, rule: .translated),
    Case(
      name: "PKRS does not govern user-mode addresses", path: [all, all, all, all | X86.key(2)],
      controls: Controls(pks: true, pkrs: accessDisable(2)), access: .read, rule: .translated),
  ]

  @Test("Rule 7: protection keys deny data accesses by AD_k, and writes by WD_k", arguments: rule7)
  func protectionKey(_ c: Case) throws { try Self.check(c) }

  // MARK: PK together with another rule

  static let keyAndAnotherRule: [Case] = [
    Case(
      name: "user write to a read-only key-3 page with WD_3: rule 2 and rule 7",
      path: [all, all, all, readOnly | X86.key(3)],
      controls: Controls(pke: true, pkru: writeDisable(3)), access: .userWrite,
      errorCode: PF.p | PF.w | PF.u | PF.pk, rule: .userWriteToReadOnly),
    Case(
      name: "supervisor read of a key-3 user page under SMAP with AD_3: rule 5 and rule 7",
      path: [all, all, all, all | X86.key(3)],
      controls: Controls(smap: true, pke: true, pkru: accessDisable(3)), access: .read,
      errorCode: PF.p | PF.pk, rule: .supervisorAccessPrevention),
    Case(
      name: "supervisor write to a read-only key-3 user page with WD_3, WP = 1: rule 6 and 7",
      path: [all, all, all, readOnly | X86.key(3)],
      controls: Controls(pke: true, pkru: writeDisable(3)), access: .write,
      errorCode: PF.p | PF.w | PF.pk, rule: .supervisorWriteToReadOnly),
    Case(
      name: "a denial by another rule alone does not set PK",
      path: [all, all, all, readOnly | X86.key(3)],
      controls: Controls(pke: true, pkru: accessDisable(4)), access: .userWrite,
      errorCode: PF.p | PF.w | PF.u, rule: .userWriteToReadOnly),
  ]

  @Test(
    "The PK bit is set whenever the key check denies, even when another rule also denies",
    arguments: keyAndAnotherRule)
  func keyBitWithAnotherRule(_ c: Case) throws { try Self.check(c) }
}
