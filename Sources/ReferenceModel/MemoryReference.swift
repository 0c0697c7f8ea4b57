/// One memory reference of a walk (SEMANTICS §4.2): which dimension read what, where.
public struct MemoryReference<D: BitVectorDomain> {
  /// `.guest` for a guest paging entry; `.nestedTable` for the nested walk of a guest entry's
  /// address; `.nestedFinal` for the nested walk of the final guest physical address.
  public var stage: Stage
  /// The level of the entry read, in its own dimension.
  public var level: Int
  /// For guest entries and their nested walks, the guest level concerned; 0 for the final
  /// translation.
  public var guestLevel: Int
  /// The host physical address read.
  public var address: D.Word
  /// The value read.
  public var value: D.Word
  /// Whether the reference happened.
  public var happened: D.Flag
}

/// The references of a walk, in order, and their count.
struct Trace<D: BitVectorDomain> {
  /// Whether to keep each reference (for `explain`) or only count them.
  let recording: Bool
  var references: [MemoryReference<D>] = []
  var count: D.Word

  init(_ d: D, recording: Bool) {
    self.recording = recording
    count = d.word(0)
  }

  mutating func note(
    _ d: D, stage: Stage, level: Int, guestLevel: Int, address: D.Word, value: D.Word,
    happened: D.Flag
  ) {
    if d.isCertainlyFalse(happened) { return }
    count = d.add(count, d.select(happened, d.word(1), d.word(0)))
    if recording {
      references.append(
        MemoryReference(
          stage: stage, level: level, guestLevel: guestLevel, address: address, value: value,
          happened: happened))
    }
  }
}
