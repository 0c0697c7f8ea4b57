import Machine
import ReferenceModel
import Testing

/// A witness for every rule the model can name, every outcome kind and every stage: the
/// switches below are exhaustive, so a rule added to the model without a witness here does not
/// compile. The suites per section test each rule thoroughly; this one keeps the list whole.
@Suite("Every rule, outcome kind and stage has a witness")
struct RuleCatalogTests {
  static let page: UInt64 = 0x80_0123_4000

  /// A native guest with `gva` mapped by a 4-KiB leaf `leaf` under permissive directories.
  static func native(_ leaf: UInt64, _ controls: Controls = Controls()) -> Setup {
    var s = Setup.native()
    s.controls = controls
    s.map(gva, to: dataGPA, bits: leaf)
    return s
  }

  /// A guest over EPT with the data page mapped by `leaf`.
  static func ept(_ leaf: UInt64, executeOnly: Bool = true) -> Setup {
    var s = Setup.ept(executeOnly: executeOnly)
    s.map(gva, to: page, bits: X86.prw | X86.a | X86.d)
    s.mapNested(page, bits: leaf)
    return s
  }

  /// The scenario, access and outcome that witness `rule`.
  static func witness(_ rule: Rule) -> (Setup, UInt64, Access, Outcome) {
    let fault = { (code: UInt64) in Outcome.pageFault(errorCode: code, linearAddress: gva) }
    let violation = { (q: UInt64) in
      Outcome.eptViolation(
        qualification: q | Qual.linearValid | Qual.final, guestPhysical: page | 0x567,
        guestLinear: gva)
    }
    let misconfiguration = Outcome.eptMisconfiguration(guestPhysical: page | 0x567)
    switch rule {
    case .translated:
      return (native(X86.prw), gva, .userWrite, .translated(hostPhysical: dataGPA | 0x567))
    case .nonCanonical:
      return (native(X86.prw), gva | 1 << 62, .read, .generalProtection)
    case .notPresent:
      return (native(0), gva, .read, fault(0))
    case .reservedBit:
      return (native(X86.prw | X86.bit(51)), gva, .read, fault(PF.p | PF.rsvd))
    case .userAccessToSupervisorAddress:
      return (native(X86.p | X86.w), gva, .userRead, fault(PF.p | PF.u))
    case .userWriteToReadOnly:
      return (native(X86.p | X86.u), gva, .userWrite, fault(PF.p | PF.w | PF.u))
    case .fetchFromExecuteDisabled:
      return (native(X86.prw | X86.xd), gva, .userFetch, fault(PF.p | PF.u | PF.id))
    case .supervisorExecutionPrevention:
      return (native(X86.prw, Controls(smep: true)), gva, .fetch, fault(PF.p | PF.id))
    case .supervisorAccessPrevention:
      return (native(X86.prw, Controls(smap: true)), gva, .read, fault(PF.p))
    case .supervisorWriteToReadOnly:
      return (native(X86.p | X86.u), gva, .write, fault(PF.p | PF.w))
    case .protectionKey:
      return (
        native(X86.prw | X86.key(1), Controls(pke: true, pkru: 1 << 2)), gva, .userRead,
        fault(PF.p | PF.u | PF.pk)
      )
    case .eptNotPresent:
      return (ept(0), gva, .read, violation(Qual.read))
    case .eptWriteWithoutRead:
      return (ept(EPTE.w | EPTE.wb), gva, .read, misconfiguration)
    case .eptExecuteOnlyUnsupported:
      return (ept(EPTE.x | EPTE.wb, executeOnly: false), gva, .fetch, misconfiguration)
    case .eptReservedBit:
      return (ept(EPTE.rwx | EPTE.wb | X86.bit(51)), gva, .read, misconfiguration)
    case .eptBadMemoryType:
      return (ept(EPTE.rwx | EPTE.type(3)), gva, .read, misconfiguration)
    case .eptReadDenied:
      return (ept(EPTE.x | EPTE.wb), gva, .read, violation(Qual.read | Qual.executable))
    case .eptWriteDenied:
      return (ept(EPTE.r | EPTE.wb), gva, .write, violation(Qual.write | Qual.readable))
    case .eptExecuteDenied:
      return (ept(EPTE.r | EPTE.wb), gva, .fetch, violation(Qual.fetch | Qual.readable))
    }
  }

  @Test("Each rule decides its witness, with the outcome SEMANTICS gives", arguments: Rule.allCases)
  func rule(_ rule: Rule) throws {
    let (setup, linear, access, outcome) = Self.witness(rule)
    let t = try setup.translate(linear, access)
    #expect(t.decidingRule == rule)
    #expect(t.outcome == outcome)
    #expect(!rule.summary.isEmpty)
  }

  /// The outcome kinds of SEMANTICS §0's result algebra.
  enum Kind: CaseIterable {
    case translated, generalProtection, pageFault, eptViolation, eptMisconfiguration
    case nestedPageFault
  }

  @Test("Every outcome kind of §0 is produced", arguments: Kind.allCases)
  func outcomeKind(_ kind: Kind) throws {
    let outcome: Outcome
    switch kind {
    case .translated: outcome = try Self.native(X86.prw).translate(gva, .read).outcome
    case .generalProtection: outcome = try Self.native(X86.prw).translate(1 << 47, .read).outcome
    case .pageFault: outcome = try Self.native(0).translate(gva, .read).outcome
    case .eptViolation: outcome = try Self.ept(0).translate(gva, .read).outcome
    case .eptMisconfiguration: outcome = try Self.ept(EPTE.w).translate(gva, .read).outcome
    case .nestedPageFault:
      var s = Setup.npt()
      s.map(gva, to: Self.page, bits: X86.prw | X86.a | X86.d)
      outcome = try s.translate(gva, .write).outcome
      #expect(
        outcome
          == .nestedPageFault(exitInfo1: PF.w | PF.u | NPF.final, exitInfo2: Self.page | 0x567))
    }
    switch (kind, outcome) {
    case (.translated, .translated), (.generalProtection, .generalProtection),
      (.pageFault, .pageFault), (.eptViolation, .eptViolation),
      (.eptMisconfiguration, .eptMisconfiguration), (.nestedPageFault, .nestedPageFault):
      break
    default:
      Issue.record("\(kind) gave \(outcome)")
    }
  }

  @Test("Each stage of the walk decides some outcome", arguments: Stage.allCases)
  func stage(_ stage: Stage) throws {
    let t: Translation<Concrete>
    switch stage {
    case .none: t = try Self.native(X86.prw).translate(gva, .read)
    case .guest: t = try Self.native(0).translate(gva, .read)
    case .nestedTable:
      var s = Self.ept(EPTE.rwx | EPTE.wb)
      s.tableLeaf = 0
      t = try s.translate(gva, .read)
    case .nestedFinal: t = try Self.ept(0).translate(gva, .read)
    }
    #expect(t.decidingStage == stage)
  }
}
