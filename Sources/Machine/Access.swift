/// What a memory access does with the byte it reaches (SEMANTICS §0, "access descriptor").
///
/// A read-modify-write (a locked operation, `ADD` to memory) is a ``write``.
public enum AccessKind: String, CaseIterable, Hashable, Sendable, Codable {
  /// A data read.
  case read
  /// A data write, including read-modify-write.
  case write
  /// An instruction fetch.
  case fetch
}

/// One memory access as the guest performs it: its kind and the privilege it runs with.
///
/// The privilege follows SEMANTICS §1.4: an access is *user-mode* when it runs at CPL 3 and is
/// not an implicit access to a system structure (GDT, LDT, IDT, TSS); every other access is
/// *supervisor-mode*. An implicit access is always supervisor-mode, whatever the CPL, and is
/// never rescued by EFLAGS.AC under SMAP.
public struct Access: Hashable, Sendable, Codable {
  /// The access kind.
  public var kind: AccessKind
  /// `true` for a user-mode access (CPL 3, explicit).
  public var user: Bool
  /// `true` for an implicit supervisor access to a system structure.
  ///
  /// Implicit accesses are supervisor-mode; `user` and `implicit` are never both `true`.
  public var implicit: Bool

  /// Makes an access; `implicit` accesses are supervisor-mode, so `user` must then be `false`.
  public init(_ kind: AccessKind, user: Bool = false, implicit: Bool = false) {
    precondition(!(user && implicit), "an implicit access is supervisor-mode")
    self.kind = kind
    self.user = user
    self.implicit = implicit
  }
}

extension Access: CustomStringConvertible {
  /// `read`, `user write`, `implicit read` and so on.
  public var description: String {
    let mode = user ? "user " : (implicit ? "implicit " : "")
    return mode + kind.rawValue
  }
}
