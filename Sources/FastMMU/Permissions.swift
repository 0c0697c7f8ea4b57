import Machine

/// The nine access classes the permission tables are indexed by: kind (read, write, fetch) ×
/// mode (user, explicit supervisor, implicit supervisor; SEMANTICS §1.4).
@usableFromInline
enum AccessClass {
  static let count = 9

  /// The class of an access.
  @inlinable @inline(__always)
  static func of(_ access: Access) -> Int {
    let kind: Int
    switch access.kind {
    case .read: kind = 0
    case .write: kind = 3
    case .fetch: kind = 6
    }
    return kind + (access.user ? 0 : (access.implicit ? 2 : 1))
  }

  /// A representative access of each class.
  static let all: [Access] = [AccessKind.read, .write, .fetch].flatMap { kind in
    [Access(kind, user: true), Access(kind), Access(kind, implicit: true)]
  }
}

/// The controls the rules of SEMANTICS §1.5 read, packed into the index of their
/// ``PermissionMap`` in a table of every combination.
///
/// | bit | meaning                                                  |
/// |-----|----------------------------------------------------------|
/// | 0   | CR0.PG: without it no guest rule applies                 |
/// | 1   | CR0.WP                                                   |
/// | 2   | CR4.SMEP                                                 |
/// | 3   | CR4.SMAP                                                 |
/// | 4   | RFLAGS.AC                                                |
/// | 5   | debug builds: ``InjectedBug/writeProtectIgnored``        |
/// | 6   | debug builds: ``InjectedBug/smapRescuesImplicitAccess``  |
struct PermissionControls: Hashable {
  /// The packed bits, below ``count``.
  let index: Int

  #if NESTCHECK_BUGS
    /// The number of combinations.
    static let count = 1 << 7
  #else
    /// The number of combinations.
    static let count = 1 << 5
  #endif

  /// The combination with index `index` (below ``count``).
  init(index: Int) {
    precondition(index >= 0 && index < Self.count)
    self.index = index
  }

  /// The controls of a guest's decoded registers.
  init(_ control: PagingControl) {
    var index = control.paging ? 1 : 0
    if control.writeProtect { index |= 1 << 1 }
    if control.smep { index |= 1 << 2 }
    if control.smap { index |= 1 << 3 }
    if control.alignmentCheck { index |= 1 << 4 }
    #if NESTCHECK_BUGS
      if control.bugs.contains(.writeProtectIgnored) { index |= 1 << 5 }
      if control.bugs.contains(.smapRescuesImplicitAccess) { index |= 1 << 6 }
    #endif
    self.index = index
  }

  var paging: Bool { index & 1 != 0 }
  var writeProtect: Bool { index & 1 << 1 != 0 }
  var smep: Bool { index & 1 << 2 != 0 }
  var smap: Bool { index & 1 << 3 != 0 }
  var alignmentCheck: Bool { index & 1 << 4 != 0 }
  #if NESTCHECK_BUGS
    var writeProtectIgnored: Bool { index & 1 << 5 != 0 }
    var smapRescuesImplicitAccess: Bool { index & 1 << 6 != 0 }
  #endif
}

/// For each access class, which of the 64 combinations of ``Rights`` permit it: KVM's
/// `update_permission_bitmask`, widened with the nested rights. Changes when CR0.WP, CR4.SMEP,
/// CR4.SMAP or RFLAGS.AC change; a TLB hit then costs one shift and one test.
///
/// The map of each combination of ``PermissionControls`` is computed from the rules once per
/// process, so a register write looks its map up rather than evaluating 576 rule checks.
struct PermissionMap {
  /// `allow[class] >> rights & 1` is 1 when the class is permitted with those rights.
  private(set) var allow: SIMD16<UInt64> = .zero

  /// Every combination's map, indexed by ``PermissionControls/index``.
  private static let table: [PermissionMap] = (0..<PermissionControls.count).map {
    PermissionMap(computing: PermissionControls(index: $0))
  }

  /// The map for a guest's controls.
  init(_ control: PagingControl) {
    self = Self.table[PermissionControls(control).index]
  }

  /// The map for `controls`, evaluated rule by rule.
  init(computing controls: PermissionControls) {
    for (index, access) in AccessClass.all.enumerated() {
      var bits: UInt64 = 0
      for rights in 0..<UInt8(64) where Self.permits(access, rights, controls) {
        bits |= 1 << UInt64(rights)
      }
      allow[index] = bits
    }
  }

  /// Whether the class of `access` is permitted with `rights`.
  @inline(__always)
  func permits(_ access: Access, _ rights: UInt8) -> Bool {
    allow[AccessClass.of(access)] >> UInt64(rights) & 1 != 0
  }

  /// SEMANTICS §1.5 rules 1–6 for the guest rights (none apply with paging off), then the
  /// nested rights the access needs (SEMANTICS §2.7 step 4, §3.5).
  static func permits(_ access: Access, _ rights: UInt8, _ control: PermissionControls) -> Bool {
    (!control.paging || !guestDenies(access, rights, control))
      && nestedPermits(access.kind, rights)
  }

  /// Whether any of rules 1–6 of SEMANTICS §1.5 denies the access.
  static func guestDenies(_ access: Access, _ rights: UInt8, _ control: PermissionControls)
    -> Bool
  {
    let userAddress = rights & Rights.user != 0
    let writable = rights & Rights.write != 0
    let executable = rights & Rights.execute != 0
    return userToSupervisorPage(access, userAddress)
      || userWriteToReadOnly(access, writable)
      || fetchFromExecuteDisabled(access, executable)
      || supervisorFetchFromUserPage(access, userAddress, control)
      || supervisorDataToUserPage(access, userAddress, control)
      || supervisorWriteToReadOnly(access, writable, control)
  }

  /// Rule 1: a user access to a supervisor-mode address.
  static func userToSupervisorPage(_ access: Access, _ userAddress: Bool) -> Bool {
    access.user && !userAddress
  }

  /// Rule 2: a user write with W = 0 somewhere on the path (CR0.WP irrelevant).
  static func userWriteToReadOnly(_ access: Access, _ writable: Bool) -> Bool {
    access.user && access.kind == .write && !writable
  }

  /// Rule 3: a fetch with XD = 1 somewhere on the path (XD counts only with NXE; ``Rights``
  /// already folded that in).
  static func fetchFromExecuteDisabled(_ access: Access, _ executable: Bool) -> Bool {
    access.kind == .fetch && !executable
  }

  /// Rule 4: SMEP, a supervisor fetch from a user-mode address.
  static func supervisorFetchFromUserPage(
    _ access: Access, _ userAddress: Bool, _ control: PermissionControls
  ) -> Bool {
    !access.user && access.kind == .fetch && userAddress && control.smep
  }

  /// Rule 5: SMAP, a supervisor data access to a user-mode address, unless explicit with
  /// EFLAGS.AC = 1 (implicit accesses are never rescued).
  static func supervisorDataToUserPage(
    _ access: Access, _ userAddress: Bool, _ control: PermissionControls
  ) -> Bool {
    #if NESTCHECK_BUGS
      let explicit = !access.implicit || control.smapRescuesImplicitAccess
    #else
      let explicit = !access.implicit
    #endif
    let rescued = explicit && control.alignmentCheck
    return !access.user && access.kind != .fetch && userAddress && control.smap && !rescued
  }

  /// Rule 6: a supervisor write with W = 0 and CR0.WP = 1.
  static func supervisorWriteToReadOnly(
    _ access: Access, _ writable: Bool, _ control: PermissionControls
  ) -> Bool {
    #if NESTCHECK_BUGS
      if control.writeProtectIgnored { return false }
    #endif
    return !access.user && access.kind == .write && !writable && control.writeProtect
  }

  /// The nested right each kind needs: R, W or X (SEMANTICS §2.7 step 4; NPT reports R = 1).
  static func nestedPermits(_ kind: AccessKind, _ rights: UInt8) -> Bool {
    switch kind {
    case .read: rights & Rights.nestedRead != 0
    case .write: rights & Rights.nestedWrite != 0
    case .fetch: rights & Rights.nestedExecute != 0
    }
  }
}

/// Protection keys (SEMANTICS §1.5 rule 7): data accesses only; PKRU for user-mode addresses
/// with CR4.PKE, IA32_PKRS for supervisor-mode addresses with CR4.PKS.
enum ProtectionKeys {
  /// Whether the key check denies `access` to a page with key `key`.
  @inline(__always)
  static func deny(
    _ access: Access, key: UInt8, userAddress: Bool, _ control: PagingControl
  ) -> Bool {
    guard access.kind != .fetch else { return false }
    let register: UInt32
    if userAddress {
      guard control.userKeys else { return false }
      register = control.pkru
    } else {
      guard control.supervisorKeys else { return false }
      register = control.pkrs
    }
    let accessDisable = register >> UInt32(2 * key) & 1 != 0
    let writeDisable = register >> UInt32(2 * key + 1) & 1 != 0
    if accessDisable { return true }
    return access.kind == .write && writeDisable && (access.user || control.writeProtect)
  }
}
