/// The result of one access through the model: the outcome, how it was decided, and what the
/// walk did to memory — in a domain.
///
/// Field meanings depend on ``kind`` (an ``OutcomeKind`` raw value):
///
/// | kind               | `code`               | `address`        | `linear`     |
/// |--------------------|----------------------|------------------|--------------|
/// | translated         | 0                    | host physical    | 0            |
/// | general protection | 0                    | 0                | 0            |
/// | page fault         | error code (§1.6)    | CR2              | 0            |
/// | EPT violation      | qualification (§2.6) | guest physical   | guest linear |
/// | EPT misconfig.     | 0                    | guest physical   | 0            |
/// | nested page fault  | EXITINFO1 (§3.3)     | EXITINFO2 (GPA)  | 0            |
public struct Translation<D: BitVectorDomain> {
  /// An ``OutcomeKind`` raw value.
  public var kind: D.Word
  /// Error code, exit qualification or EXITINFO1.
  public var code: D.Word
  /// Host physical address, CR2, guest physical address or EXITINFO2.
  public var address: D.Word
  /// The guest-linear address an EPT violation reports.
  public var linear: D.Word
  /// The ``Rule`` that decided, as its raw value.
  public var rule: D.Word
  /// The ``Stage`` in which it was decided, as its raw value.
  public var stage: D.Word
  /// The paging level at which it was decided (0 where none applies).
  public var level: D.Word
  /// The size of the guest page (0 with guest paging off).
  public var guestPageSize: D.Word
  /// The size of the nested page mapping the final guest physical address (0 without nested
  /// paging).
  public var nestedPageSize: D.Word
  /// The guest's accumulated rights: user-mode address, writable, executable (§1.5).
  public var guestRights: (user: D.Flag, writable: D.Flag, executable: D.Flag)
  /// The guest leaf's protection key.
  public var guestKey: D.Word
  /// The nested rights on the final guest physical address.
  public var nestedRights: (read: D.Flag, write: D.Flag, execute: D.Flag)
  /// Every memory reference, in order (only when recording was asked for).
  public var references: [MemoryReference<D>]
  /// The number of memory references that happened.
  public var referenceCount: D.Word
  /// The accessed/dirty writes the access performs, in order.
  public var updates: [Update<D>]
}
