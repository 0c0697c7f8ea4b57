/// Access rights accumulated over an x86 translation's path (SEMANTICS §1.5): every entry from
/// the root to the leaf counts, the leaf included.
struct X86Rights<D: BitVectorDomain> {
  /// AND of U/S: the address is a user-mode address.
  var user: D.Flag
  /// AND of R/W.
  var writable: D.Flag
  /// OR of XD (bit 63; a reserved-bit fault already stopped the walk where NXE = 0).
  var executeDisable: D.Flag
  /// The leaf's protection key, bits 62:59 (ignored in non-leaf entries).
  var key: D.Word

  /// Accumulates the rights of a walk's valid entries; meaningful when the walk is complete.
  init(_ d: D, _ walk: borrowing TableWalk<D>) {
    // An AND and an OR over the valid entries: bit i of `all` is "every entry has bit i",
    // of `any` "some entry has it".
    var all = d.word(~0)
    var any = d.word(0)
    var key = d.word(0)
    walk.entries.forEach { entry in
      all = d.bitAnd(all, d.select(entry.valid, entry.value, d.word(~0)))
      any = d.bitOr(any, d.select(entry.valid, entry.value, d.word(0)))
      key = d.select(entry.leaf, d.field(entry.value, X86Bit.keyHigh, X86Bit.keyLow), key)
    }
    self.user = d.bit(all, X86Bit.user)
    self.writable = d.bit(all, X86Bit.writable)
    self.executeDisable = d.bit(any, X86Bit.executeDisable)
    self.key = key
  }
}

/// The verdict of the permission rules on a complete walk.
struct Denial<D: BitVectorDomain> {
  /// Some rule denies the access.
  var denied: D.Flag
  /// The protection-key rule denies it: the error code's PK bit is set whenever this holds,
  /// even if another rule also denies (KVM, QEMU and Xen agree; SEMANTICS §1.5 rule 7).
  var keyDenied: D.Flag
  /// The first rule that denies, in the numbering of SEMANTICS §1.5 (a ``Rule`` raw value).
  var rule: D.Word
}

/// SEMANTICS §1.5, rules 1–7: whether `access` is denied on a path with `rights` under
/// `control`. Evaluated only after a complete, valid walk (WALK64 step 6).
func checkPermissions<D>(
  _ d: D, _ rights: X86Rights<D>, _ access: AccessDescriptor<D>, _ control: GuestControl<D>
) -> Denial<D> {
  let supervisor = access.supervisor(d)
  let data = d.not(access.fetch)
  // Rule 1: user-mode access to a supervisor-mode address.
  let rule1 = d.and(access.user, d.not(rights.user))
  // Rule 2: user-mode write with R/W = 0 somewhere on the path (CR0.WP is irrelevant).
  let rule2 = d.and(d.and(access.user, access.write), d.not(rights.writable))
  // Rule 3: any fetch from an XD page, with EFER.NXE = 1.
  let rule3 = d.and(d.and(access.fetch, control.executeDisable), rights.executeDisable)
  // Rule 4: supervisor-mode fetch from a user-mode address, with CR4.SMEP = 1.
  let rule4 = d.and(d.and(supervisor, access.fetch), d.and(rights.user, control.smep))
  // Rule 5: supervisor-mode data access to a user-mode address, with CR4.SMAP = 1, unless the
  // access is explicit (hence at CPL < 3) and EFLAGS.AC = 1. Implicit accesses are never
  // rescued (KVM 4f4aa80e3b88, Xen's walker).
  let rescued = d.and(d.not(access.implicit), control.alignmentCheck)
  let rule5 = d.and(
    d.and(d.and(supervisor, data), d.and(rights.user, control.smap)), d.not(rescued))
  // Rule 6: supervisor-mode write with R/W = 0 on the path and CR0.WP = 1; user- and
  // supervisor-mode addresses alike.
  let rule6 = d.and(
    d.and(supervisor, access.write), d.and(d.not(rights.writable), control.writeProtect))
  // Rule 7: protection keys, data accesses only. PKRU governs user-mode addresses with
  // CR4.PKE, IA32_PKRS supervisor-mode addresses with CR4.PKS. AD_k denies every data access;
  // WD_k denies writes that are user-mode or happen with CR0.WP = 1.
  let keysOn = d.select(rights.user, control.userKeys, control.supervisorKeys)
  let register = d.select(rights.user, control.pkru, control.pkrs)
  let pair = d.shiftRight(register, by: d.shiftLeft(rights.key, 1))
  let accessDisable = d.bit(pair, 0)
  let writeDisable = d.bit(pair, 1)
  let writeDenied = d.and(
    d.and(access.write, writeDisable), d.or(access.user, control.writeProtect))
  let rule7 = d.and(d.and(keysOn, data), d.or(accessDisable, writeDenied))

  let denied = d.or(
    d.or(d.or(rule1, rule2), d.or(rule3, rule4)), d.or(d.or(rule5, rule6), rule7))
  if d.isCertainlyFalse(denied) {
    return Denial(denied: denied, keyDenied: rule7, rule: d.word(Rule.translated.rawValue))
  }
  let rules: [(D.Flag, Rule)] = [
    (rule1, .userAccessToSupervisorAddress), (rule2, .userWriteToReadOnly),
    (rule3, .fetchFromExecuteDisabled), (rule4, .supervisorExecutionPrevention),
    (rule5, .supervisorAccessPrevention), (rule6, .supervisorWriteToReadOnly),
    (rule7, .protectionKey),
  ]
  var first = d.word(Rule.translated.rawValue)
  for (fires, rule) in rules.reversed() {
    first = d.select(fires, d.word(rule.rawValue), first)
  }
  return Denial(denied: denied, keyDenied: rule7, rule: first)
}
