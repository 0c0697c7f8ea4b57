/// Translates one access: the two-dimensional walk of SEMANTICS §4.1 (WALK2D), over whichever
/// nested dimension the state has. With no nested paging it is WALK64 (§1.7); with guest paging
/// off it is the nested translation alone.
///
/// This is the model's single entry point, generic over the domain: ``Concrete`` runs it as the
/// oracle, the prover's symbolic domain turns it into a formula.
public func translate<D: BitVectorDomain>(
  _ d: D, _ state: ModelState<D>, linear: D.Word, access: AccessDescriptor<D>,
  choices: Choices<D>, recording: Bool = false
) -> Translation<D> {
  let configuration = state.configuration
  switch (state.nested, configuration.nested) {
  case (
    .ept(let root, let accessedDirty, let modeBasedExecute),
    .ept(let levels, let bits, let executeOnly, let gigabytePages)
  ):
    let format = EPTFormat<D>(
      levels: levels, addressBits: bits, executeOnly: executeOnly, gigabytePages: gigabytePages,
      modeBasedExecute: modeBasedExecute)
    let stage = EPTStage(format: format, root: root, accessedDirty: accessedDirty)
    return walk2D(d, state, stage, linear, access, choices, recording)
  case (.npt(let root, let executeDisable), .npt(let levels, let bits)):
    let stage = NPTStage(
      d, levels: levels, addressBits: bits, root: root, executeDisable: executeDisable)
    return walk2D(d, state, stage, linear, access, choices, recording)
  default:
    return walk2D(d, state, IdentityStage<D>(), linear, access, choices, recording)
  }
}

/// One guest paging entry read during the walk: where it is in each dimension.
private struct GuestEntryAccess<D: BitVectorDomain> {
  var guestPhysical: D.Word
  var hostPhysical: D.Word
}

/// The two-dimensional walk over `nested`. A guest level in `guestViews` reads its entry from
/// that view of memory instead of the state's (the oracle's explanation of a walk that read
/// one word at two levels with two values: one from a paging-structure cache, §6.1). The guest
/// levels from `cachedLevels.from` up read their entries through `cachedLevels.stage` instead
/// of `nested`: the nested stage in force when a paging-structure cache kept those entries
/// (the oracle's explanation of a walk that uses entries cached under an EPTP with A/D flags
/// off and reads the rest under one with them on, §6.2).
func walk2D<N: NestedStage>(
  _ d: N.D, _ state: ModelState<N.D>, _ nested: N, _ linear: N.D.Word,
  _ access: AccessDescriptor<N.D>, _ choices: Choices<N.D>, _ recording: Bool,
  guestViews: [Int: N.D.Memory] = [:], cachedLevels: (stage: N, from: Int)? = nil
) -> Translation<N.D> {
  typealias D = N.D
  let configuration = state.configuration
  let guest = state.guest
  let memory = state.memory
  var verdict = Verdict(d)
  var trace = Trace(d, recording: recording)
  var updates: [Update<D>] = []
  let paging = configuration.guestLevels > 0

  // Step 1 (§1.2): a non-canonical linear address raises #GP(0) before any memory reference.
  if paging {
    let topBit = configuration.guestLevels == 5 ? 56 : 47
    let top = d.shiftRight(linear, topBit)
    let canonical = d.or(d.isZero(top), d.equal(top, d.word(mask(width: 64 - topBit))))
    verdict.record(
      d,
      Fault(
        d, .generalProtection, code: d.word(0), address: d.word(0),
        rule: d.word(Rule.nonCanonical.rawValue), stage: .none, level: d.word(0)),
      when: d.not(canonical))
  }

  // Steps 2–3: the guest walk. Each entry's guest physical address is translated by the
  // nested dimension first (3b, as a paging-entry read), then read (3c); a nested fault there
  // stops the walk before the guest looks at the entry.
  let tableContext = NestedContext(
    access: access, linear: linear, guestUser: d.no, guestWritable: d.no,
    guestExecutable: d.no, choices: choices)
  var entryAccesses = LevelList<GuestEntryAccess<D>>()
  // With guest paging off the "walk" is the identity: no entries, the linear address is the
  // guest physical one. Keeping the walk non-optional spares the concrete interpretation a copy
  // of it at every use.
  var walk = TableWalk<D>(identity: d, linear)
  let errorCode = accessErrorCode(d, access, guest)
  if paging {
    let format = X86Format<D>(
      levels: configuration.guestLevels, addressBits: configuration.guestAddressBits,
      vendor: configuration.vendor, gigabytePages: configuration.guestGigabytePages,
      executeDisable: guest.executeDisable)
    walk = walkTables(
      d, format, root: guest.root, address: linear, enabled: d.not(verdict.decided)
    ) { (gpa: D.Word, level: Int, live: D.Flag) -> FetchedEntry<D> in
      let stage = cachedLevels.flatMap { level >= $0.from ? $0.stage : nil } ?? nested
      let located = stage.walk(
        d, memory, gpa, live: live, stage: .nestedTable, guestLevel: level, trace: &trace)
      let check = stage.fault(d, located, gpa: gpa, purpose: .tableRead, context: tableContext)
      verdict.record(d, check.fault, when: d.and(live, check.failed))
      let reached = d.and(live, d.not(check.failed))
      let value = d.load(
        guestViews.isEmpty ? memory : guestViews[level] ?? memory, located.physical)
      trace.note(
        d, stage: .guest, level: level, guestLevel: level, address: located.physical,
        value: value, happened: reached)
      stage.accessedDirty(
        d, located, purpose: .tableRead, context: tableContext, happens: reached, into: &updates)
      entryAccesses.append(GuestEntryAccess(guestPhysical: gpa, hostPhysical: located.physical))
      return FetchedEntry(value: value, failed: check.failed)
    }
    // Step 3d (§1.7 steps 4b, 4d): a not-present entry, then a reserved bit.
    verdict.record(
      d,
      Fault(
        d, .pageFault, code: errorCode, address: linear, rule: d.word(Rule.notPresent.rawValue),
        stage: .guest, level: walk.stopLevel),
      when: walk.notPresent)
    verdict.record(
      d,
      Fault(
        d, .pageFault,
        code: d.bitOr(errorCode, d.word(1 << ErrorCodeBit.present | 1 << ErrorCodeBit.reserved)),
        address: linear, rule: d.word(Rule.reservedBit.rawValue), stage: .guest,
        level: walk.stopLevel),
      when: walk.malformed)
  }

  // Step 4 (§1.5): permissions over the whole path, after a complete walk.
  let rights = paging ? X86Rights(d, walk) : nil
  if let rights {
    let denial = checkPermissions(d, rights, access, guest)
    verdict.record(
      d,
      Fault(
        d, .pageFault,
        code: pageFaultErrorCode(
          d, access, guest, present: d.yes, reserved: d.no, key: denial.keyDenied),
        address: linear, rule: denial.rule, stage: .guest, level: walk.stopLevel),
      when: d.and(walk.complete, denial.denied))
  }
  let guestUser = rights?.user ?? d.yes
  let guestWritable = rights?.writable ?? d.yes
  let guestExecutable =
    rights.map { d.not(d.and(guest.executeDisable, $0.executeDisable)) } ?? d.yes
  let finalContext = NestedContext(
    access: access, linear: linear, guestUser: guestUser, guestWritable: guestWritable,
    guestExecutable: guestExecutable, choices: choices)

  // Step 5 (§1.8): A in every guest entry of the path, D in the leaf for writes, each a write
  // to the entry through the nested dimension (a paging-entry write: with EPT A/D flags off,
  // W is checked only here). Whether these come before or after step 7 is IMPL (§4.1).
  // The write goes through the nested tables again; §4.2 does not count those references
  // again, so they go to a scratch trace.
  func locateForWrite(_ i: Int) -> TableWalk<D> {
    var uncounted = Trace(d, recording: false)
    return nested.walk(
      d, memory, entryAccesses[i].guestPhysical, live: d.yes, stage: .nestedTable,
      guestLevel: 0, trace: &uncounted)
  }
  var written = LevelList<D.Flag>()
  entryAccesses.forEach { _ in written.append(d.no) }
  func accessedDirtyWrites(enabled: D.Flag) {
    guard !d.isCertainlyFalse(enabled) else { return }
    walk.entries.forEachIndexed { i, entry in
      let needA = d.not(d.bit(entry.value, X86Bit.accessed))
      let needD = d.and(
        d.and(entry.leaf, access.write), d.not(d.bit(entry.value, X86Bit.dirty)))
      let needed = d.and(entry.valid, d.or(needA, needD))
      let live = d.and(enabled, d.not(verdict.decided))
      if d.isCertainlyFalse(d.and(live, needed)) { return }
      let located = locateForWrite(i)
      let check = nested.fault(
        d, located, gpa: entryAccesses[i].guestPhysical, purpose: .tableWrite,
        context: tableContext)
      verdict.record(d, check.fault, when: d.and(d.and(live, needed), check.failed))
      let writes = d.and(d.and(live, needed), d.not(check.failed))
      updates.append(
        Update(
          happens: writes, address: located.physical,
          bits: d.bitOr(d.bits(needA, at: X86Bit.accessed), d.bits(needD, at: X86Bit.dirty)),
          stage: .guest, level: Int(entry.level)))
      nested.accessedDirty(
        d, located, purpose: .tableWrite, context: tableContext, happens: writes, into: &updates)
      written[i] = d.or(written[i], writes)
    }
  }

  accessedDirtyWrites(enabled: choices.accessedDirtyBeforeFinal)

  // Steps 6–7: the final guest physical address through the nested dimension.
  let finalAddress = walk.physical
  let finalLive = d.not(verdict.decided)
  let final = nested.walk(
    d, memory, finalAddress, live: finalLive, stage: .nestedFinal, guestLevel: 0, trace: &trace)
  let finalCheck = nested.fault(
    d, final, gpa: finalAddress, purpose: .final, context: finalContext)
  verdict.record(d, finalCheck.fault, when: d.and(finalLive, finalCheck.failed))
  let finalReached = d.and(finalLive, d.not(finalCheck.failed))
  nested.accessedDirty(
    d, final, purpose: .final, context: finalContext, happens: finalReached, into: &updates)

  accessedDirtyWrites(enabled: d.not(choices.accessedDirtyBeforeFinal))

  // §1.8 IMPL: a faulting walk may set A in the non-leaf guest entries it traversed; never in
  // the leaf. Only where the nested dimension lets the entry be written.
  if !d.isCertainlyFalse(d.and(choices.accessedOnFault, verdict.decided)) {
    walk.entries.forEachIndexed { i, entry in
      let candidate = d.and(
        d.and(entry.valid, d.not(entry.leaf)),
        d.and(d.not(d.bit(entry.value, X86Bit.accessed)), d.not(written[i])))
      let eligible = d.and(d.and(choices.accessedOnFault, verdict.decided), candidate)
      if d.isCertainlyFalse(eligible) { return }
      let located = locateForWrite(i)
      let check = nested.fault(
        d, located, gpa: entryAccesses[i].guestPhysical, purpose: .tableWrite,
        context: tableContext)
      let writes = d.and(eligible, d.not(check.failed))
      updates.append(
        Update(
          happens: writes, address: located.physical, bits: d.word(1 << X86Bit.accessed),
          stage: .guest, level: Int(entry.level)))
      nested.accessedDirty(
        d, located, purpose: .tableWrite, context: tableContext, happens: writes, into: &updates)
    }
  }

  let nestedRights = nested.rights(d, final, context: finalContext)
  return Translation(
    kind: verdict.kind, code: verdict.code,
    address: d.select(verdict.decided, verdict.address, final.physical),
    linear: verdict.linear, rule: verdict.rule, stage: verdict.stage, level: verdict.level,
    guestPageSize: walk.pageSize,
    nestedPageSize: final.pageSize,
    guestRights: (guestUser, guestWritable, guestExecutable), guestKey: rights?.key ?? d.word(0),
    nestedRights: nestedRights, references: trace.references, referenceCount: trace.count,
    updates: updates)
}
