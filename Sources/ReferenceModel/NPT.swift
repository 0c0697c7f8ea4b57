/// AMD NPT as the nested stage (SEMANTICS §3.5, NPT_TRANSLATE).
///
/// The nested walk is the x86 walk itself (X86Entry.swift, Permissions.swift,
/// PageFaultErrorCode.swift) in the host's paging mode, with every access user-mode, guest
/// page-table accesses performed as writes, and CR0.WP, SMEP, SMAP and protection keys out of
/// play (§3.1–§3.2). Nothing here restates an x86 rule.
struct NPTStage<D: BitVectorDomain>: NestedStage {
  let format: X86Format<D>
  /// The host-mode control the nested walk runs under: N_CR3, host EFER.NXE, nothing else.
  let control: GuestControl<D>

  init(_ d: D, levels: Int, addressBits: Int, root: D.Word, executeDisable: D.Flag) {
    format = X86Format(
      levels: levels, addressBits: addressBits, vendor: .amd, gigabytePages: true,
      executeDisable: executeDisable)
    control = GuestControl(
      d, root: root, writeProtect: d.no, smep: d.no, smap: d.no, userKeys: d.no,
      supervisorKeys: d.no, executeDisable: executeDisable, alignmentCheck: d.no)
  }

  func walk(
    _ d: D, _ memory: D.Memory, _ gpa: D.Word, live: D.Flag, stage: Stage, guestLevel: Int,
    trace: inout Trace<D>
  ) -> TableWalk<D> {
    hostTableWalk(
      d, format, memory, root: control.root, address: gpa, live: live, stage: stage,
      guestLevel: guestLevel, trace: &trace)
  }

  /// NPT_TRANSLATE step 1: the access the nested walk performs — always user-mode; a write for
  /// guest page-table accesses (§3.2), the guest's own kind for the final address.
  func nestedAccess(_ d: D, _ purpose: NestedPurpose, _ access: AccessDescriptor<D>)
    -> AccessDescriptor<D>
  {
    switch purpose {
    case .tableRead, .tableWrite:
      AccessDescriptor(write: d.yes, fetch: d.no, user: d.yes, implicit: d.no)
    case .final:
      AccessDescriptor(write: access.write, fetch: access.fetch, user: d.yes, implicit: d.no)
    }
  }

  /// NPT_TRANSLATE steps 2–3: a #PF of the nested walk becomes #NPF with EXITINFO1 = its error
  /// code plus bit 32 (final address) or bit 33 (guest page-table access), EXITINFO2 = GPA.
  func fault(
    _ d: D, _ tables: borrowing TableWalk<D>, gpa: D.Word, purpose: NestedPurpose,
    context: NestedContext<D>
  ) -> (failed: D.Flag, fault: Fault<D>) {
    let access = nestedAccess(d, purpose, context.access)
    let denial = checkPermissions(d, X86Rights(d, tables), access, control)
    let denied = d.and(tables.complete, denial.denied)
    let failed = d.or(d.or(tables.notPresent, tables.malformed), denied)
    if d.isCertainlyFalse(failed) { return (failed, Fault(d, nothing: gpa)) }
    let errorCode = pageFaultErrorCode(
      d, access, control, present: d.not(tables.notPresent), reserved: tables.malformed,
      key: d.no)
    let stageBit: UInt64 = purpose == .final ? 1 << 32 : 1 << 33
    let rule = d.select(
      tables.notPresent, d.word(Rule.notPresent.rawValue),
      d.select(tables.malformed, d.word(Rule.reservedBit.rawValue), denial.rule))
    return (
      failed,
      Fault(
        d, .nestedPageFault, code: d.bitOr(errorCode, d.word(stageBit)), address: gpa,
        rule: rule, stage: purpose == .final ? .nestedFinal : .nestedTable,
        level: tables.stopLevel)
    )
  }

  /// NPT_TRANSLATE step 4: A in every entry used; D in the leaf for writes. Whether a guest
  /// page-table *read* (performed as a write) sets D is unverified (§3.2) and a choice.
  func accessedDirty(
    _ d: D, _ tables: borrowing TableWalk<D>, purpose: NestedPurpose,
    context: NestedContext<D>, happens: D.Flag, into updates: inout [Update<D>]
  ) {
    if d.isCertainlyFalse(happens) { return }
    let dirty: D.Flag
    switch purpose {
    case .tableRead: dirty = context.choices.nestedDirtyOnTableRead
    case .tableWrite: dirty = d.yes
    case .final: dirty = context.access.write
    }
    setAccessedDirty(
      d, tables, accessed: X86Bit.accessed, dirty: X86Bit.dirty, dirtyLeaf: dirty,
      happens: happens, stage: purpose == .final ? .nestedFinal : .nestedTable, into: &updates)
  }

  func rights(_ d: D, _ tables: borrowing TableWalk<D>, context: NestedContext<D>) -> (
    read: D.Flag, write: D.Flag, execute: D.Flag
  ) {
    let r = X86Rights(d, tables)
    let execute = d.not(d.and(control.executeDisable, r.executeDisable))
    return (r.user, d.and(r.user, r.writable), d.and(r.user, execute))
  }
}
