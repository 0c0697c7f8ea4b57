import Machine

/// An access in a domain (SEMANTICS §0, §1.4): what it does and with which privilege.
///
/// `user` is a user-mode access (CPL 3, explicit); `implicit` an implicit supervisor access to
/// a system structure. A read is an access that is neither a write nor a fetch.
public struct AccessDescriptor<D: BitVectorDomain> {
  /// A write (including read-modify-write).
  public var write: D.Flag
  /// An instruction fetch.
  public var fetch: D.Flag
  /// A user-mode access.
  public var user: D.Flag
  /// An implicit supervisor access (never rescued by EFLAGS.AC under SMAP).
  public var implicit: D.Flag

  /// Makes a descriptor from its flags. At most one of `write` and `fetch` may hold, and
  /// `user` excludes `implicit`; callers that make these symbolic constrain them so.
  public init(write: D.Flag, fetch: D.Flag, user: D.Flag, implicit: D.Flag) {
    self.write = write
    self.fetch = fetch
    self.user = user
    self.implicit = implicit
  }

  /// The descriptor of a concrete access.
  public init(_ d: D, _ access: Access) {
    write = d.flag(access.kind == .write)
    fetch = d.flag(access.kind == .fetch)
    user = d.flag(access.user)
    implicit = d.flag(access.implicit)
  }

  /// A data read: neither a write nor a fetch.
  public func read(_ d: D) -> D.Flag { d.not(d.or(write, fetch)) }
  /// A supervisor-mode access.
  public func supervisor(_ d: D) -> D.Flag { d.not(user) }
}
