/// Why the 2D walk translates a guest physical address (SEMANTICS §2.4, §2.7 step 3, §3.5).
enum NestedPurpose {
  /// Reading a guest paging entry (WALK2D step 3b).
  case tableRead
  /// Writing a guest paging entry's A/D bits (WALK2D step 5).
  case tableWrite
  /// The final guest physical address of the access (WALK2D step 7).
  case final
}

/// What a nested check needs to know about the access beyond the guest physical address.
struct NestedContext<D: BitVectorDomain> {
  /// The guest's access (for the final translation).
  var access: AccessDescriptor<D>
  /// The guest-linear address being translated.
  var linear: D.Word
  /// Whether the guest-linear address is user-mode (AND of guest U/S; MBEC fetches and
  /// advanced qualification bits read it).
  var guestUser: D.Flag
  /// The guest rights, for advanced EPT qualification bits 9–11.
  var guestWritable: D.Flag
  var guestExecutable: D.Flag
  var choices: Choices<D>
}

/// The second dimension of the 2D walk: EPT, NPT, or none. One guest walk (Walk2D.swift) runs
/// over each, so the order and priority of SEMANTICS §4.1 is written once.
protocol NestedStage<D> {
  associatedtype D: BitVectorDomain
  /// Walks the nested tables for `gpa`; records every memory reference in `trace`, guarded by
  /// `live` (whether the 2D walk really reaches this nested walk).
  func walk(
    _ d: D, _ memory: D.Memory, _ gpa: D.Word, live: D.Flag, stage: Stage, guestLevel: Int,
    trace: inout Trace<D>
  ) -> TableWalk<D>
  /// Whether the nested translation fails for `purpose`, and the fault it then raises.
  func fault(
    _ d: D, _ walk: borrowing TableWalk<D>, gpa: D.Word, purpose: NestedPurpose,
    context: NestedContext<D>
  ) -> (failed: D.Flag, fault: Fault<D>)
  /// Appends the nested A/D writes a successful translation for `purpose` performs; the
  /// caller guards them with whether it succeeded. (Appending, not returning an array, keeps a
  /// concrete walk that writes nothing free of array traffic.)
  func accessedDirty(
    _ d: D, _ walk: borrowing TableWalk<D>, purpose: NestedPurpose, context: NestedContext<D>,
    happens: D.Flag, into updates: inout [Update<D>]
  )
  /// The final translation's nested rights (read, write, execute), for reports.
  func rights(_ d: D, _ walk: borrowing TableWalk<D>, context: NestedContext<D>) -> (
    read: D.Flag, write: D.Flag, execute: D.Flag
  )
}

/// No nested paging: a guest physical address is the host physical address.
struct IdentityStage<D: BitVectorDomain>: NestedStage {
  func walk(
    _ d: D, _ memory: D.Memory, _ gpa: D.Word, live: D.Flag, stage: Stage, guestLevel: Int,
    trace: inout Trace<D>
  ) -> TableWalk<D> {
    TableWalk(identity: d, gpa)
  }

  func fault(
    _ d: D, _ walk: borrowing TableWalk<D>, gpa: D.Word, purpose: NestedPurpose,
    context: NestedContext<D>
  ) -> (failed: D.Flag, fault: Fault<D>) {
    (d.no, Fault(d, nothing: gpa))
  }

  func accessedDirty(
    _ d: D, _ walk: borrowing TableWalk<D>, purpose: NestedPurpose, context: NestedContext<D>,
    happens: D.Flag, into updates: inout [Update<D>]
  ) {}

  func rights(_ d: D, _ walk: borrowing TableWalk<D>, context: NestedContext<D>) -> (
    read: D.Flag, write: D.Flag, execute: D.Flag
  ) { (d.yes, d.yes, d.yes) }
}

/// Reads host tables straight from memory, recording each read.
func hostTableWalk<F: EntryFormat>(
  _ d: F.D, _ format: F, _ memory: F.D.Memory, root: F.D.Word, address: F.D.Word,
  live: F.D.Flag, stage: Stage, guestLevel: Int, trace: inout Trace<F.D>
) -> TableWalk<F.D> {
  walkTables(d, format, root: root, address: address, enabled: live) {
    entryAddress, level, reached in
    let value = d.load(memory, entryAddress)
    trace.note(
      d, stage: stage, level: level, guestLevel: guestLevel, address: entryAddress, value: value,
      happened: reached)
    return FetchedEntry(value: value, failed: d.no)
  }
}
