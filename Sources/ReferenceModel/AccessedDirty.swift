/// One accessed/dirty write: OR `bits` into the word at host physical `address`, if `happens`.
///
/// A/D updates only ever set bits and are applied as OR, so their order does not matter and
/// repeating one changes nothing (SEMANTICS §1.8: sticky, locked read-modify-write; the walker
/// writes only when a bit is still clear).
public struct Update<D: BitVectorDomain> {
  /// Whether the write happens.
  public var happens: D.Flag
  /// The host physical address of the entry.
  public var address: D.Word
  /// The bits set.
  public var bits: D.Word
  /// Which dimension's entry it is.
  public var stage: Stage
  /// The entry's level.
  public var level: Int
}

/// Appends the A/D writes of a successful walk over `tables` (SEMANTICS §1.7 step 7, §2.7
/// step 5, §3.5 step 4): A in every valid entry that lacks it, and D in the leaf when
/// `dirtyLeaf` and it lacks it. Entries whose bits are already set are not written (§1.8).
func setAccessedDirty<D>(
  _ d: D, _ tables: borrowing TableWalk<D>, accessed: Int, dirty: Int, dirtyLeaf: D.Flag,
  happens: D.Flag, stage: Stage, into updates: inout [Update<D>]
) {
  tables.entries.forEach { entry in
    let needA = d.not(d.bit(entry.value, accessed))
    let needD = d.and(d.and(entry.leaf, dirtyLeaf), d.not(d.bit(entry.value, dirty)))
    let writes = d.and(d.and(happens, entry.valid), d.or(needA, needD))
    if d.isCertainlyFalse(writes) { return }
    updates.append(
      Update(
        happens: writes, address: entry.address,
        bits: d.bitOr(d.bits(needA, at: accessed), d.bits(needD, at: dirty)), stage: stage,
        level: Int(entry.level)))
  }
}
