import Machine

/// What one entry does to the walk that reads it (SEMANTICS §1.7 steps 4b–4f, §2.7 steps
/// 2c–2e): it stops the walk (not present, or present and malformed: the walk faults there),
/// maps a page (a leaf), or names the next table.
///
/// The predicates are the walk's own (``EntryFormat``): asking the role of an entry is asking
/// the model, not restating a rule. The differential oracle's explanation search uses it to
/// discard, before walking, values that cannot end the walk the way a cached entry must
/// (docs/fuzzing.md: an entry that stops a walk is never cached, SEMANTICS §6.1).
public enum EntryRole: Hashable, Sendable {
  /// The walk stops at the entry: not present, or present with a reserved bit or a forbidden
  /// encoding.
  case stops
  /// The entry maps a page.
  case leaf
  /// The entry names the next table.
  case table
}

extension EntryFormat where D == Concrete {
  /// The role of `entry` read at `level` under this format.
  @inline(__always)
  func role(_ entry: UInt64, level: Int) -> EntryRole {
    let d = Concrete()
    guard isPresent(d, entry) else { return .stops }
    let leaf = isLeaf(d, entry, level: level)
    if isMalformed(d, entry, level: level, leaf: leaf) { return .stops }
    return leaf ? .leaf : .table
  }
}

extension ConcreteModel {
  /// The role of a guest paging entry with value `entry` at `level` (1 = PTE … 5 = PML5E)
  /// under the current controls.
  public func guestEntryRole(_ entry: UInt64, level: Int) -> EntryRole {
    let configuration = state.configuration
    let format = X86Format<Concrete>(
      levels: configuration.guestLevels, addressBits: configuration.guestAddressBits,
      vendor: configuration.vendor, gigabytePages: configuration.guestGigabytePages,
      executeDisable: state.guest.executeDisable)
    return format.role(entry, level: level)
  }

  /// The role of a nested (EPT or NPT) entry with value `entry` at `level` under the current
  /// nested configuration; `.table` without a nested dimension.
  public func nestedEntryRole(_ entry: UInt64, level: Int) -> EntryRole {
    switch (state.nested, state.configuration.nested) {
    case (
      .ept(_, _, let modeBasedExecute),
      .ept(let levels, let bits, let executeOnly, let gigabytePages)
    ):
      let format = EPTFormat<Concrete>(
        levels: levels, addressBits: bits, executeOnly: executeOnly,
        gigabytePages: gigabytePages, modeBasedExecute: modeBasedExecute)
      return format.role(entry, level: level)
    case (.npt(let root, let executeDisable), .npt(let levels, let bits)):
      let stage = NPTStage(
        Concrete(), levels: levels, addressBits: bits, root: root,
        executeDisable: executeDisable)
      return stage.format.role(entry, level: level)
    default:
      return .table
    }
  }
}
