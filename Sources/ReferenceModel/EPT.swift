/// Intel EPT as the nested stage (SEMANTICS §2.7, EPT_TRANSLATE; Intel SDM Vol. 3C §28.3).
struct EPTStage<D: BitVectorDomain>: NestedStage {
  let format: EPTFormat<D>
  /// EPTP[N-1:12].
  let root: D.Word
  /// EPTP[6]: accessed and dirty flags enabled.
  let accessedDirty: D.Flag

  func walk(
    _ d: D, _ memory: D.Memory, _ gpa: D.Word, live: D.Flag, stage: Stage, guestLevel: Int,
    trace: inout Trace<D>
  ) -> TableWalk<D> {
    hostTableWalk(
      d, format, memory, root: root, address: gpa, live: live, stage: stage,
      guestLevel: guestLevel, trace: &trace)
  }

  /// EPT_TRANSLATE step 2b: R, W, X (XS), XU ANDed over every entry the walk read, including a
  /// not-present one (whose bits are all zero), as qualification bits 3–6 report them.
  func effectiveRights(_ d: D, _ tables: borrowing TableWalk<D>) -> (
    read: D.Flag, write: D.Flag, executeSupervisor: D.Flag, executeUser: D.Flag
  ) {
    // One AND over the entries read: bit i of it is "every entry read has bit i".
    var path = d.word(~0)
    tables.entries.forEach { entry in
      path = d.bitAnd(path, d.select(entry.read, entry.value, d.word(~0)))
    }
    return (
      read: d.bit(path, EPTBit.read), write: d.bit(path, EPTBit.write),
      executeSupervisor: d.bit(path, EPTBit.execute),
      executeUser: d.and(d.bit(path, EPTBit.userExecute), format.modeBasedExecute)
    )
  }

  /// What the access needs of EPT (EPT_TRANSLATE step 3): guest paging-entry reads count as
  /// writes when A/D flags are on (§2.4, §2.5); A/D writes are writes.
  func needs(_ d: D, _ purpose: NestedPurpose, _ access: AccessDescriptor<D>) -> (
    read: D.Flag, write: D.Flag, fetch: D.Flag
  ) {
    switch purpose {
    case .final: (access.read(d), access.write, access.fetch)
    case .tableRead: (d.not(accessedDirty), accessedDirty, d.no)
    case .tableWrite: (d.no, d.yes, d.no)
    }
  }

  func fault(
    _ d: D, _ tables: borrowing TableWalk<D>, gpa: D.Word, purpose: NestedPurpose,
    context: NestedContext<D>
  ) -> (failed: D.Flag, fault: Fault<D>) {
    let stage: Stage = purpose == .final ? .nestedFinal : .nestedTable
    let rights = effectiveRights(d, tables)
    let need = needs(d, purpose, context.access)

    // Step 4: permissions, judged only after the leaf (V2–V4). With mode-based execute
    // control a fetch needs XU for a user-mode linear address and XS otherwise.
    let execute = d.select(
      d.and(format.modeBasedExecute, context.guestUser), rights.executeUser,
      rights.executeSupervisor)
    let readDenied = d.and(need.read, d.not(rights.read))
    let writeDenied = d.and(need.write, d.not(rights.write))
    let executeDenied = d.and(need.fetch, d.not(execute))
    let denied = d.and(tables.complete, d.or(readDenied, d.or(writeDenied, executeDenied)))
    let failed = d.or(tables.malformed, d.or(tables.notPresent, denied))
    if d.isCertainlyFalse(failed) { return (failed, Fault(d, nothing: gpa)) }
    let permissionRule = d.select(
      readDenied, d.word(Rule.eptReadDenied.rawValue),
      d.select(
        writeDenied, d.word(Rule.eptWriteDenied.rawValue), d.word(Rule.eptExecuteDenied.rawValue)))

    // The misconfiguration that stopped the walk, if one did (§2.3 M1–M4). A
    // misconfiguration anywhere on the reached path beats a permission violation, because the
    // walk stops there; a not-present entry (V1) stops it before any misconfiguration below.
    var misconfigurationRule = d.word(Rule.eptReservedBit.rawValue)
    let malformed = tables.malformed
    let stopLevel = tables.stopLevel
    tables.entries.forEach { entry in
      let m = format.misconfiguration(
        d, entry.value, level: Int(entry.level),
        leaf: format.isLeaf(d, entry.value, level: Int(entry.level)))
      let rule = d.select(
        m.writeWithoutRead, d.word(Rule.eptWriteWithoutRead.rawValue),
        d.select(
          m.executeOnly, d.word(Rule.eptExecuteOnlyUnsupported.rawValue),
          d.select(
            m.reserved, d.word(Rule.eptReservedBit.rawValue),
            d.word(Rule.eptBadMemoryType.rawValue))))
      let stoppedHere = d.and(malformed, d.equal(stopLevel, d.word(UInt64(entry.level))))
      misconfigurationRule = d.select(stoppedHere, rule, misconfigurationRule)
    }

    // Misconfiguration and violation exclude each other (the walk stopped once), so one
    // fault record carries either; a misconfiguration reports only the GPA (§2.3).
    let misconfigured = tables.malformed
    let qualification = self.qualification(d, purpose, context, rights, need: need)
    let violationRule = d.select(
      tables.notPresent, d.word(Rule.eptNotPresent.rawValue), permissionRule)
    let kind = d.select(
      misconfigured, d.word(OutcomeKind.eptMisconfiguration.rawValue),
      d.word(OutcomeKind.eptViolation.rawValue))
    let fault = Fault<D>(
      kind: kind, code: d.select(misconfigured, d.word(0), qualification), address: gpa,
      linear: d.select(misconfigured, d.word(0), context.linear),
      rule: d.select(misconfigured, misconfigurationRule, violationRule), stage: stage,
      level: tables.stopLevel)
    return (failed, fault)
  }

  /// The exit qualification of an EPT violation (SEMANTICS §2.6; EPT_TRANSLATE "VIOLATION").
  ///
  /// | bits | content                                                                    |
  /// |------|----------------------------------------------------------------------------|
  /// | 2:0  | the access: read, write, fetch (§2.4 for guest paging-entry accesses)      |
  /// | 5:3  | R, W, X (XS) ANDed over the entries read                                   |
  /// | 6    | XU ANDed over the entries read, with mode-based execute control           |
  /// | 7    | the guest-linear address field is valid (always, outside PAE PDPTE loads) |
  /// | 8    | the access was the final translation, not a guest paging-entry access     |
  /// | 11:9 | advanced: the guest-linear address is user / writable / executable (IMPL) |
  func qualification(
    _ d: D, _ purpose: NestedPurpose, _ context: NestedContext<D>,
    _ rights: (read: D.Flag, write: D.Flag, executeSupervisor: D.Flag, executeUser: D.Flag),
    need: (read: D.Flag, write: D.Flag, fetch: D.Flag)
  ) -> D.Word {
    let accessBits: D.Word
    switch purpose {
    case .final:
      accessBits = d.bitOr(
        d.bitOr(d.bits(need.read, at: 0), d.bits(need.write, at: 1)), d.bits(need.fetch, at: 2))
    case .tableRead:
      // §2.4: a paging-entry read reports bit 0, and bit 1 too when A/D flags are on.
      accessBits = d.bitOr(d.word(1), d.bits(accessedDirty, at: 1))
    case .tableWrite:
      // §2.4: an A/D write reports bit 1; bit 0 is IMPL.
      accessBits = d.bitOr(d.word(2), d.bits(context.choices.readBitOnAccessedDirtyWrite, at: 0))
    }
    let rightsBits = d.bitOr(
      d.bitOr(d.bits(rights.read, at: 3), d.bits(rights.write, at: 4)),
      d.bitOr(d.bits(rights.executeSupervisor, at: 5), d.bits(rights.executeUser, at: 6)))
    var q = d.bitOr(d.bitOr(accessBits, rightsBits), d.word(1 << 7))
    if purpose == .final {
      q = d.bitOr(q, d.word(1 << 8))
      let advanced = d.bitOr(
        d.bitOr(d.bits(context.guestUser, at: 9), d.bits(context.guestWritable, at: 10)),
        d.bits(context.guestExecutable, at: 11))
      q = d.bitOr(q, d.select(context.choices.advancedQualification, advanced, d.word(0)))
    }
    return q
  }

  /// EPT_TRANSLATE step 5: with EPTP[6], A in every entry of the path, D in the leaf when the
  /// access counts as a write (§2.5: guest paging-entry reads do).
  func accessedDirty(
    _ d: D, _ tables: borrowing TableWalk<D>, purpose: NestedPurpose,
    context: NestedContext<D>, happens: D.Flag, into updates: inout [Update<D>]
  ) {
    if d.isCertainlyFalse(d.and(happens, accessedDirty)) { return }
    let write = needs(d, purpose, context.access).write
    setAccessedDirty(
      d, tables, accessed: EPTBit.accessed, dirty: EPTBit.dirty, dirtyLeaf: write,
      happens: d.and(happens, accessedDirty),
      stage: purpose == .final ? .nestedFinal : .nestedTable, into: &updates)
  }

  func rights(_ d: D, _ tables: borrowing TableWalk<D>, context: NestedContext<D>) -> (
    read: D.Flag, write: D.Flag, execute: D.Flag
  ) {
    let r = effectiveRights(d, tables)
    let execute = d.select(
      d.and(format.modeBasedExecute, context.guestUser), r.executeUser, r.executeSupervisor)
    return (r.read, r.write, execute)
  }
}
