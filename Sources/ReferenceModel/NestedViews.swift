import Machine

/// A nested stage whose walk of some guest-physical addresses reads another view of memory:
/// the state as it was when a guest-physical mapping was cached (SEMANTICS §6.2). Everything
/// else — which entry is a leaf, what faults, what is written — is the wrapped stage's.
struct ViewedNestedStage<Inner: NestedStage>: NestedStage where Inner.D == Concrete {
  typealias D = Concrete
  let inner: Inner
  /// The memory the nested walk of each guest-physical address reads, where not the state's.
  let views: [UInt64: FrameMemory]

  func walk(
    _ d: D, _ memory: D.Memory, _ gpa: D.Word, live: D.Flag, stage: Stage, guestLevel: Int,
    trace: inout Trace<D>
  ) -> TableWalk<D> {
    inner.walk(
      d, views[gpa] ?? memory, gpa, live: live, stage: stage, guestLevel: guestLevel,
      trace: &trace)
  }

  func fault(
    _ d: D, _ walk: borrowing TableWalk<D>, gpa: D.Word, purpose: NestedPurpose,
    context: NestedContext<D>
  ) -> (failed: D.Flag, fault: Fault<D>) {
    inner.fault(d, walk, gpa: gpa, purpose: purpose, context: context)
  }

  func accessedDirty(
    _ d: D, _ walk: borrowing TableWalk<D>, purpose: NestedPurpose, context: NestedContext<D>,
    happens: D.Flag, into updates: inout [Update<D>]
  ) {
    inner.accessedDirty(
      d, walk, purpose: purpose, context: context, happens: happens, into: &updates)
  }

  func rights(_ d: D, _ walk: borrowing TableWalk<D>, context: NestedContext<D>) -> (
    read: D.Flag, write: D.Flag, execute: D.Flag
  ) {
    inner.rights(d, walk, context: context)
  }
}

extension ConcreteModel {
  /// Translates one access as ``translate(_:_:choices:recording:)`` does, except that the
  /// nested walk of each guest-physical address in `nestedViews` reads that view of memory
  /// instead of the state's. The differential oracle uses it to explain an outcome by
  /// guest-physical mappings cached at different epochs: two nested walks of one access may
  /// see one nested entry with two values (SEMANTICS §6.2, paging-structure caches of the
  /// guest-physical dimension). Each guest level in `guestViews` likewise reads its entry from
  /// that view: one word read at two levels of a walk (a table that maps itself) may be seen
  /// with two values, one kept by a paging-structure cache (§6.1). Under EPT with A/D flags
  /// on, the guest levels from `readsAsReadsFrom` up read their entries as reads, as they were
  /// while the flags were off: a paging-structure cache may have kept them from then, since
  /// setting EPTP bit 6 under the same root invalidates nothing (§6.2), while the levels below
  /// are read now, as writes (§2.4).
  public func translate(
    _ linear: UInt64, _ access: Access, choices: Choices<Concrete>, recording: Bool,
    nestedViews: [UInt64: FrameMemory], guestViews: [Int: FrameMemory] = [:],
    readsAsReadsFrom: Int? = nil
  ) -> Translation<Concrete> {
    let d = Concrete()
    let descriptor = AccessDescriptor(d, access)
    switch (state.nested, state.configuration.nested) {
    case (
      .ept(let root, let accessedDirty, let modeBasedExecute),
      .ept(let levels, let bits, let executeOnly, let gigabytePages)
    ):
      let format = EPTFormat<Concrete>(
        levels: levels, addressBits: bits, executeOnly: executeOnly,
        gigabytePages: gigabytePages, modeBasedExecute: modeBasedExecute)
      let stage = ViewedNestedStage(
        inner: EPTStage(format: format, root: root, accessedDirty: accessedDirty),
        views: nestedViews)
      let cached = readsAsReadsFrom.map { level in
        (
          stage: ViewedNestedStage(
            inner: EPTStage(format: format, root: root, accessedDirty: false), views: nestedViews),
          from: level
        )
      }
      return walk2D(
        d, state, stage, linear, descriptor, choices, recording, guestViews: guestViews,
        cachedLevels: cached)
    case (.npt(let root, let executeDisable), .npt(let levels, let bits)):
      let stage = ViewedNestedStage(
        inner: NPTStage(
          d, levels: levels, addressBits: bits, root: root, executeDisable: executeDisable),
        views: nestedViews)
      return walk2D(
        d, state, stage, linear, descriptor, choices, recording, guestViews: guestViews)
    default:
      return walk2D(
        d, state, IdentityStage<Concrete>(), linear, descriptor, choices, recording,
        guestViews: guestViews)
    }
  }
}
