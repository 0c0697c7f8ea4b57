import Machine

/// How a hypervisor derives a shadow leaf from a guest leaf and the host's mapping (SEMANTICS
/// §5.2; KVM `FNAME(page_fault)`, `FNAME(fetch)`, `make_spte`; Xen `_sh_propagate`), written
/// once, generic over the domain: concretely it is the rule a fast implementation is checked
/// against, symbolically it is the left side of the entry lemma (``shadowEntryLemma(_:_:_:derivation:)``),
/// proved for every value of every entry.
///
/// The steps, in the order KVM applies them:
///
/// | step | rule                                                                                 |
/// |------|--------------------------------------------------------------------------------------|
/// | 1    | rights := guest leaf (U, W, X = not XD) AND the parent's `role.access`               |
/// | 2    | not a write fault and guest leaf D = 0: drop W (dirty tracking)                      |
/// | 3    | guest leaf A = 0: no leaf (Xen; KVM sets A in the walk first)                        |
/// | 6    | CR0.WP = 0, supervisor write fault, W = 0: W := 1, U := 0, and X := 0 under SMEP; a  |
/// |      | user page under SMAP or PKE cannot become a kernel page: no leaf (emulate)           |
/// | 4    | host: not readable: no leaf (x86 cannot say execute-only); not writable, not         |
/// |      | `host_writable`, or log-dirty and not yet dirty: drop W; not executable: drop X      |
/// | 5    | the target is a write-protected guest page table: drop W                              |
/// | NX   | XD := not X, always: the hardware runs with EFER.NXE = 1 (``shadowHardwareControl``) |
/// | 9    | non-leaf entries: P, R/W, U/S, A (``shadowTableEntry(_:frame:)``)                    |
///
/// The leaf maps the host frame of the faulting page at the shadow leaf's level (step 8 is
/// the caller's choice of that level, at most the guest's and the host's page size). Steps 7
/// (MMIO) and the NX-huge-page mitigation are not modelled.

/// The rights of a path of x86 entries as `role.access` holds them: user, writable, executable.
public struct ShadowAccess<D: BitVectorDomain> {
  /// AND of U/S.
  public var user: D.Flag
  /// AND of R/W.
  public var writable: D.Flag
  /// NOT (EFER.NXE AND (OR of XD)).
  public var executable: D.Flag

  /// Makes the rights from their flags.
  public init(user: D.Flag, writable: D.Flag, executable: D.Flag) {
    self.user = user
    self.writable = writable
    self.executable = executable
  }

  /// Every right: the root's `role.access`.
  public static func all(_ d: D) -> ShadowAccess {
    ShadowAccess(user: d.yes, writable: d.yes, executable: d.yes)
  }

  /// The rights of one x86 entry, ANDed into these (SEMANTICS §1.5 accumulation).
  public func adding(_ d: D, entry: D.Word, executeDisable: D.Flag) -> ShadowAccess {
    ShadowAccess(
      user: d.and(user, d.bit(entry, X86Bit.user)),
      writable: d.and(writable, d.bit(entry, X86Bit.writable)),
      executable: d.and(
        executable, d.not(d.and(executeDisable, d.bit(entry, X86Bit.executeDisable)))))
  }
}

/// The rights the host mapping grants a guest-physical page, ANDed over the host entries
/// above its leaf: read, write, execute (EPT X, or XS with mode-based execute control) and
/// user execute (EPT XU). For NPT every right needs U/S (nested accesses are user accesses,
/// SEMANTICS §3.2): read = U, write = U and R/W, execute = U and not XD.
public struct HostAccess<D: BitVectorDomain> {
  /// Reads allowed.
  public var read: D.Flag
  /// Writes allowed.
  public var write: D.Flag
  /// Fetches allowed (for supervisor-mode linear addresses under mode-based execute control).
  public var execute: D.Flag
  /// Fetches allowed for user-mode linear addresses under mode-based execute control.
  public var userExecute: D.Flag

  /// Makes the rights from their flags.
  public init(read: D.Flag, write: D.Flag, execute: D.Flag, userExecute: D.Flag) {
    self.read = read
    self.write = write
    self.execute = execute
    self.userExecute = userExecute
  }

  /// Every right: what the root passes down, and the identity mapping without nested paging.
  public static func all(_ d: D) -> HostAccess {
    HostAccess(read: d.yes, write: d.yes, execute: d.yes, userExecute: d.yes)
  }

  /// These rights ANDed with one host entry's, decoded in the host format `nested`.
  public func adding(
    _ d: D, entry: D.Word, nested: Configuration.Nested, executeDisable: D.Flag
  ) -> HostAccess {
    switch nested {
    case .none:
      return self
    case .ept:
      return HostAccess(
        read: d.and(read, d.bit(entry, EPTBit.read)),
        write: d.and(write, d.bit(entry, EPTBit.write)),
        execute: d.and(execute, d.bit(entry, EPTBit.execute)),
        userExecute: d.and(userExecute, d.bit(entry, EPTBit.userExecute)))
    case .npt:
      let user = d.bit(entry, X86Bit.user)
      let executable = d.and(
        user, d.not(d.and(executeDisable, d.bit(entry, X86Bit.executeDisable))))
      return HostAccess(
        read: d.and(read, user),
        write: d.and(write, d.and(user, d.bit(entry, X86Bit.writable))),
        execute: d.and(execute, executable), userExecute: d.and(userExecute, executable))
    }
  }
}

/// The shapes a shadow leaf's derivation is about: the guest's and the host's paging formats
/// (``Configuration``), the levels of the guest leaf, the host leaf and the shadow leaf.
public struct ShadowLeafShape: Hashable, Sendable, CustomStringConvertible {
  /// The guest's and host's formats.
  public var configuration: Configuration
  /// Level of the guest leaf: 1 (4 KiB), 2 (2 MiB), 3 (1 GiB).
  public var guestLevel: Int
  /// Level of the host leaf (1 without nested paging).
  public var hostLevel: Int
  /// Level of the shadow leaf: at most `guestLevel` and `hostLevel` (SEMANTICS §5.2 step 8).
  public var shadowLevel: Int
  /// The host's physical-address width: the shadow entries' MAXPHYADDR.
  public var hostAddressBits: Int

  /// Makes a shape; `shadowLevel` must not exceed `guestLevel` or `hostLevel`.
  public init(
    configuration: Configuration, guestLevel: Int, hostLevel: Int, shadowLevel: Int,
    hostAddressBits: Int
  ) {
    precondition(shadowLevel <= guestLevel && shadowLevel <= hostLevel)
    self.configuration = configuration
    self.guestLevel = guestLevel
    self.hostLevel = hostLevel
    self.shadowLevel = shadowLevel
    self.hostAddressBits = hostAddressBits
  }

  /// Every shape of `configuration` whose leaves the formats allow: guest leaves at 1–3 (not 3
  /// without 1-GiB pages), host leaves at 1–3 (1 only without nested paging; not 3 where EPT
  /// lacks 1-GiB pages), shadow leaves at every level up to both.
  public static func all(_ configuration: Configuration, hostAddressBits: Int) -> [ShadowLeafShape]
  {
    let guestTop = configuration.guestGigabytePages ? 3 : 2
    let hostTop: Int
    switch configuration.nested {
    case .none: hostTop = 1
    case .ept(_, _, _, let gigabytePages): hostTop = gigabytePages ? 3 : 2
    case .npt: hostTop = 3
    }
    var shapes: [ShadowLeafShape] = []
    for guest in 1...guestTop {
      for host in 1...hostTop {
        for shadow in 1...min(guest, host) {
          shapes.append(
            ShadowLeafShape(
              configuration: configuration, guestLevel: guest, hostLevel: host,
              shadowLevel: shadow, hostAddressBits: hostAddressBits))
        }
      }
    }
    return shapes
  }

  /// `guest 2M, host 4K, shadow 4K over EPT, 4/4 levels`.
  public var description: String {
    let nested: String
    switch configuration.nested {
    case .none: nested = "no nested paging"
    case .ept(let levels, _, _, _): nested = "\(levels)-level EPT"
    case .npt(let levels, _): nested = "\(levels)-level NPT"
    }
    return "guest \(configuration.guestLevels)-level, leaf \(pageName(guestLevel)); host "
      + "\(nested), leaf \(pageName(hostLevel)); shadow leaf \(pageName(shadowLevel))"
  }
}

private func pageName(_ level: Int) -> String {
  switch level {
  case 1: "4K"
  case 2: "2M"
  default: "1G"
  }
}

/// What the hypervisor knows when it installs a shadow leaf for a fault at ``linear``
/// (SEMANTICS §5.2): the guest walk succeeded for the faulting access, set A on its path and D
/// in the leaf for a write; the host mapping of the target guest-physical page was found.
public struct ShadowLeafRequest<D: BitVectorDomain> {
  /// The guest leaf entry, after the walk.
  public var guestLeaf: D.Word
  /// The rights inherited from the guest entries above the leaf: the shadow parent's
  /// `role.access` (step 1).
  public var inherited: ShadowAccess<D>
  /// The host (EPT or NPT) leaf entry mapping the target page; ignored without nested paging.
  public var hostLeaf: D.Word
  /// The host rights ANDed over the host entries above ``hostLeaf``.
  public var hostInherited: HostAccess<D>
  /// The faulting guest virtual address.
  public var linear: D.Word
  /// The faulting access.
  public var access: AccessDescriptor<D>
  /// The guest's control state (CR0.WP, CR4.SMEP/SMAP/PKE, EFER.NXE are read).
  public var control: GuestControl<D>
  /// NPT: the host's EFER.NXE (bit 63 of NPT entries is XD); ignored otherwise.
  public var hostExecuteDisable: D.Flag
  /// EPT: mode-based execute control; ignored otherwise.
  public var modeBasedExecute: D.Flag
  /// The host lets the page be written at all (KVM `host_writable`, a writable p2m type).
  public var hostWritable: D.Flag
  /// Log-dirty is on and the page is not yet marked dirty (step 4).
  public var logDirty: D.Flag
  /// The target page is a guest page table the hypervisor write-protects (step 5).
  public var pageTable: D.Flag

  /// Makes a request from its parts.
  public init(
    guestLeaf: D.Word, inherited: ShadowAccess<D>, hostLeaf: D.Word,
    hostInherited: HostAccess<D>, linear: D.Word, access: AccessDescriptor<D>,
    control: GuestControl<D>, hostExecuteDisable: D.Flag, modeBasedExecute: D.Flag,
    hostWritable: D.Flag, logDirty: D.Flag, pageTable: D.Flag
  ) {
    self.guestLeaf = guestLeaf
    self.inherited = inherited
    self.hostLeaf = hostLeaf
    self.hostInherited = hostInherited
    self.linear = linear
    self.access = access
    self.control = control
    self.hostExecuteDisable = hostExecuteDisable
    self.modeBasedExecute = modeBasedExecute
    self.hostWritable = hostWritable
    self.logDirty = logDirty
    self.pageTable = pageTable
  }
}

/// A rule that derives a shadow leaf: the reference one (``ReferenceShadowLeafDerivation``), or
/// one under test, which ``shadowEntryLemma(_:_:_:derivation:)`` states the entry lemma of.
public protocol ShadowLeafDerivation: Sendable {
  /// The leaf installed for `request` at `shape.shadowLevel`, or zero for none.
  func derive<D: BitVectorDomain>(_ d: D, _ shape: ShadowLeafShape, _ request: ShadowLeafRequest<D>)
    -> D.Word
}

/// SEMANTICS §5.2 as ``deriveShadowLeaf(_:_:_:)`` writes it.
public struct ReferenceShadowLeafDerivation: ShadowLeafDerivation {
  /// The reference rule.
  public init() {}

  /// ``deriveShadowLeaf(_:_:_:)``.
  public func derive<D: BitVectorDomain>(
    _ d: D, _ shape: ShadowLeafShape, _ request: ShadowLeafRequest<D>
  ) -> D.Word {
    deriveShadowLeaf(d, shape, request)
  }
}

/// The shadow leaf a hypervisor installs for `request` (SEMANTICS §5.2 steps 1–6, 9 and forced
/// NX): a present x86 leaf at `shape.shadowLevel`, or zero where it installs none.
public func deriveShadowLeaf<D: BitVectorDomain>(
  _ d: D, _ shape: ShadowLeafShape, _ request: ShadowLeafRequest<D>
) -> D.Word {
  let guest = request.control
  let leaf = request.guestLeaf
  let access = request.access

  // Step 1: the guest leaf's rights ANDed with what the parents passed down.
  var rights = request.inherited.adding(d, entry: leaf, executeDisable: guest.executeDisable)
  let guestUser = rights.user

  // Step 2: a clean leaf is mapped read-only unless this is a write fault, so the first write
  // faults and the hypervisor sets the guest's D (KVM `protect_clean_gpte`).
  let clean = d.not(d.or(access.write, d.bit(leaf, X86Bit.dirty)))
  rights.writable = d.and(rights.writable, d.not(clean))

  // Step 3: nothing while the guest leaf's A is clear (Xen; KVM's walk has set it by now).
  var installed = d.bit(leaf, X86Bit.accessed)

  // Step 6 (KVM, CR0.WP = 0): a supervisor write to a page the guest maps read-only succeeds
  // natively; the hardware runs with WP = 1, so the leaf becomes a writable kernel page
  // (U = 0), not executable under SMEP. A user page cannot become one under SMAP (supervisor
  // data accesses would stop faulting) or PKE (the key register would change): emulate.
  let kernelPage = d.all(
    d.not(guest.writeProtect), access.write, d.not(access.user), d.not(rights.writable))
  let kernelForbidden = d.and(guestUser, d.or(guest.smap, guest.userKeys))
  installed = d.and(installed, d.not(d.and(kernelPage, kernelForbidden)))
  rights = ShadowAccess(
    user: d.and(rights.user, d.not(kernelPage)),
    writable: d.or(rights.writable, kernelPage),
    executable: d.and(rights.executable, d.not(d.and(kernelPage, guest.smep))))

  // Step 4: the host's restrictions. The host leaf's rights with those of its parents; with
  // mode-based execute control the guest address's U/S picks XU or XS (SEMANTICS §2.7 step 4).
  let host = request.hostInherited.adding(
    d, entry: request.hostLeaf, nested: shape.configuration.nested,
    executeDisable: request.hostExecuteDisable)
  let hostExecute: D.Flag
  if case .ept = shape.configuration.nested {
    hostExecute = d.select(
      d.and(request.modeBasedExecute, guestUser), host.userExecute, host.execute)
  } else {
    hostExecute = host.execute
  }
  installed = d.and(installed, host.read)
  rights.writable = d.all(
    rights.writable, host.write, request.hostWritable, d.not(request.logDirty))
  rights.executable = d.and(rights.executable, hostExecute)

  // Step 5: a write-protected guest page table is never mapped writable (I5).
  rights.writable = d.and(rights.writable, d.not(request.pageTable))

  // The frame: the guest leaf maps the faulting page's guest-physical address, the host leaf
  // its host-physical address; the shadow leaf maps that page at its own size (step 8).
  let configuration = shape.configuration
  let guestShift = indexShift(level: shape.guestLevel)
  let gpa = d.bitOr(
    d.masked(leaf, mask(configuration.guestAddressBits - 1, guestShift)),
    d.masked(request.linear, mask(width: guestShift)))
  let hpa: D.Word
  switch configuration.nested {
  case .none:
    hpa = gpa
  case .ept(_, let bits, _, _), .npt(_, let bits):
    let hostShift = indexShift(level: shape.hostLevel)
    hpa = d.bitOr(
      d.masked(request.hostLeaf, mask(bits - 1, hostShift)), d.masked(gpa, mask(width: hostShift)))
  }
  let frame = d.masked(hpa, mask(shape.hostAddressBits - 1, indexShift(level: shape.shadowLevel)))

  // The entry: A always, D with W (the hardware never writes a shadow entry), XD without X
  // (NX forced), the guest leaf's protection key, PS above level 1.
  let fixed: UInt64 =
    1 << UInt64(X86Bit.present) | 1 << UInt64(X86Bit.accessed)
    | (shape.shadowLevel > 1 ? 1 << UInt64(X86Bit.pageSize) : 0)
  let entry = d.bitOr(
    d.bitOr(frame, d.word(fixed), d.masked(leaf, mask(X86Bit.keyHigh, X86Bit.keyLow))),
    d.bitOr(
      d.bits(rights.user, at: X86Bit.user),
      d.when(rights.writable, 1 << UInt64(X86Bit.writable) | 1 << UInt64(X86Bit.dirty)),
      d.bits(d.not(rights.executable), at: X86Bit.executeDisable)))
  return d.select(installed, entry, d.word(0))
}

/// Step 9: a non-leaf shadow entry linking the shadow table at host physical `frame`: present,
/// writable, user, accessed. All restriction lives in the leaves and `role.access`.
public func shadowTableEntry<D: BitVectorDomain>(_ d: D, frame: D.Word) -> D.Word {
  d.bitOr(
    d.masked(frame, mask(51, 12)),
    d.word(
      1 << UInt64(X86Bit.present) | 1 << UInt64(X86Bit.writable) | 1 << UInt64(X86Bit.user)
        | 1 << UInt64(X86Bit.accessed)))
}

/// The controls the hardware walks the shadow with (SEMANTICS §5.2 step 6, §5.5): the guest's,
/// with CR0.WP = 1 and EFER.NXE = 1 forced, as KVM loads them.
public func shadowHardwareControl<D: BitVectorDomain>(_ d: D, _ guest: GuestControl<D>)
  -> GuestControl<D>
{
  var control = GuestControl(
    d, root: d.word(0), writeProtect: d.yes, smep: guest.smep, smap: guest.smap,
    userKeys: guest.userKeys, supervisorKeys: guest.supervisorKeys, executeDisable: d.yes,
    alignmentCheck: guest.alignmentCheck)
  control.pkru = guest.pkru
  control.pkrs = guest.pkrs
  return control
}

// MARK: - The entry lemma

/// The free values of the entry lemma: every entry on the guest path down to the leaf, every
/// entry on the host path down to its leaf, the address, the faulting access, the access
/// checked afterwards, the guest's registers and the host's flags.
public struct ShadowEntryLemmaInputs<D: BitVectorDomain> {
  /// Guest entries from the root level down to the leaf's (levels `guestLevels`…`guestLevel`).
  public var guestPath: [D.Word]
  /// Host entries from the root level down to the leaf's (empty without nested paging).
  public var hostPath: [D.Word]
  /// The guest virtual address.
  public var linear: D.Word
  /// The access whose fault made the hypervisor install the leaf.
  public var fault: AccessDescriptor<D>
  /// The access made afterwards through the shadow.
  public var access: AccessDescriptor<D>
  /// Guest CR0 (WP, PG).
  public var cr0: D.Word
  /// Guest CR4 (SMEP, SMAP, PKE, PKS).
  public var cr4: D.Word
  /// Guest EFER (NXE).
  public var efer: D.Word
  /// Guest RFLAGS (AC, for SMAP).
  public var rflags: D.Word
  /// Guest PKRU: user protection-key rights.
  public var pkru: D.Word
  /// Guest PKRS: supervisor protection-key rights.
  public var pkrs: D.Word
  /// NPT: the host's EFER.
  public var hostEFER: D.Word
  /// EPT: mode-based execute control.
  public var modeBasedExecute: D.Flag
  /// ``ShadowLeafRequest/hostWritable``.
  public var hostWritable: D.Flag
  /// ``ShadowLeafRequest/logDirty``.
  public var logDirty: D.Flag
  /// ``ShadowLeafRequest/pageTable``.
  public var pageTable: D.Flag

  /// Makes the inputs from their parts.
  public init(
    guestPath: [D.Word], hostPath: [D.Word], linear: D.Word, fault: AccessDescriptor<D>,
    access: AccessDescriptor<D>, cr0: D.Word, cr4: D.Word, efer: D.Word, rflags: D.Word,
    pkru: D.Word, pkrs: D.Word, hostEFER: D.Word, modeBasedExecute: D.Flag,
    hostWritable: D.Flag, logDirty: D.Flag, pageTable: D.Flag
  ) {
    self.guestPath = guestPath
    self.hostPath = hostPath
    self.linear = linear
    self.fault = fault
    self.access = access
    self.cr0 = cr0
    self.cr4 = cr4
    self.efer = efer
    self.rflags = rflags
    self.pkru = pkru
    self.pkrs = pkrs
    self.hostEFER = hostEFER
    self.modeBasedExecute = modeBasedExecute
    self.hostWritable = hostWritable
    self.logDirty = logDirty
    self.pageTable = pageTable
  }
}

/// The entry lemma for one shape: `premise ⇒ conclusion` must hold for every value of the
/// inputs.
public struct ShadowEntryLemma<D: BitVectorDomain> {
  /// The situation in which the hypervisor installs the leaf: the guest walk for the faulting
  /// access is complete at the guest leaf's level and permitted, with D set for a write; the
  /// host walk of the target is complete at the host leaf's level; both accesses are accesses
  /// (not both a write and a fetch, not both user and implicit).
  public var premise: D.Flag
  /// What must follow for the access: the derived leaf permits it (the hardware's walk of a
  /// shadow whose non-leaf entries are ``shadowTableEntry(_:frame:)``, under
  /// ``shadowHardwareControl(_:_:)``) ⇒ the composition permits it (the guest path under the
  /// guest's controls, then the host path's final translation) at the same host physical
  /// address; the guest leaf has A, and for a write D, and the target is writable by the
  /// host, not log-dirty and not a write-protected page table.
  public var conclusion: D.Flag
  /// The derived leaf.
  public var shadowLeaf: D.Word
  /// Whether the hardware's walk of the derived leaf permits the access.
  public var shadowPermits: D.Flag
  /// Whether the composition (guest path, then the host's final translation) permits it.
  public var compositionPermits: D.Flag
  /// Where the composition lands: the host physical address.
  public var compositionAddress: D.Word
}

/// The statement of the entry lemma (SEMANTICS §5.2 against §1.5, §1.7, §2.7, §3.5), built
/// from the model's own walk: the guest path and host path are walked by ``walkTables`` with
/// the inputs as table entries, judged by the model's permission rules and nested stages; the
/// shadow path is walked the same way. `derivation` is the rule under test (normally
/// ``ReferenceShadowLeafDerivation``).
public func shadowEntryLemma<D: BitVectorDomain>(
  _ d: D, _ shape: ShadowLeafShape, _ inputs: ShadowEntryLemmaInputs<D>,
  derivation: some ShadowLeafDerivation = ReferenceShadowLeafDerivation()
) -> ShadowEntryLemma<D> {
  let configuration = shape.configuration
  let levels = configuration.guestLevels
  precondition(inputs.guestPath.count == levels - shape.guestLevel + 1)
  let guest = GuestControl(
    d, cr0: inputs.cr0, cr3: d.word(0), cr4: inputs.cr4, efer: inputs.efer,
    rflags: inputs.rflags, pkru: inputs.pkru, pkrs: inputs.pkrs,
    addressBits: configuration.guestAddressBits)
  func path(_ entries: [D.Word], top: Int) -> (D.Word, Int, D.Flag) -> FetchedEntry<D> {
    { _, level, _ in
      let index = top - level
      return FetchedEntry(
        value: index < entries.count ? entries[index] : d.word(0), failed: d.no)
    }
  }
  let wellFormed = { (a: AccessDescriptor<D>) in
    d.and(d.not(d.and(a.write, a.fetch)), d.not(d.and(a.user, a.implicit)))
  }

  // The guest walk (WALK64 steps 4–6) over the path, and its permission rules.
  let guestFormat = X86Format<D>(
    levels: levels, addressBits: configuration.guestAddressBits, vendor: configuration.vendor,
    gigabytePages: configuration.guestGigabytePages, executeDisable: guest.executeDisable)
  let guestWalk = walkTables(
    d, guestFormat, root: d.word(0), address: inputs.linear, enabled: d.yes,
    fetch: path(inputs.guestPath, top: levels))
  let guestRights = X86Rights(d, guestWalk)
  let leaf = inputs.guestPath[inputs.guestPath.count - 1]
  var premise = d.all(
    guestWalk.complete, d.equal(guestWalk.stopLevel, d.word(UInt64(shape.guestLevel))),
    d.not(checkPermissions(d, guestRights, inputs.fault, guest).denied),
    d.implies(inputs.fault.write, d.bit(leaf, X86Bit.dirty)),
    wellFormed(inputs.fault), wellFormed(inputs.access))
  let guestPermits = d.not(checkPermissions(d, guestRights, inputs.access, guest).denied)
  var inherited = ShadowAccess<D>.all(d)
  for entry in inputs.guestPath.dropLast() {
    inherited = inherited.adding(d, entry: entry, executeDisable: guest.executeDisable)
  }

  // The host's final translation of the guest-physical address (EPT_TRANSLATE, NPT_TRANSLATE).
  let gpa = guestWalk.physical
  let noChoices = Choices<D>(
    accessedOnFault: d.no, accessedDirtyBeforeFinal: d.no, readBitOnAccessedDirtyWrite: d.no,
    nestedDirtyOnTableRead: d.no, advancedQualification: d.no)
  let context = NestedContext(
    access: inputs.access, linear: inputs.linear, guestUser: guestRights.user,
    guestWritable: guestRights.writable,
    guestExecutable: d.not(d.and(guest.executeDisable, guestRights.executeDisable)),
    choices: noChoices)
  let hostPermits: D.Flag
  let hpa: D.Word
  var hostLeaf = d.word(0)
  var hostInherited = HostAccess<D>.all(d)
  let hostExecuteDisable = d.bit(inputs.hostEFER, RegisterBit.eferExecuteDisableEnable)
  func hostWalk<F: EntryFormat>(_ format: F) -> TableWalk<D> where F.D == D {
    precondition(inputs.hostPath.count == format.levels - shape.hostLevel + 1)
    return walkTables(
      d, format, root: d.word(0), address: gpa, enabled: d.yes,
      fetch: path(inputs.hostPath, top: format.levels))
  }
  switch configuration.nested {
  case .none:
    hostPermits = d.yes
    hpa = gpa
  case .ept(let hostLevels, let bits, let executeOnly, let gigabytePages):
    let format = EPTFormat<D>(
      levels: hostLevels, addressBits: bits, executeOnly: executeOnly,
      gigabytePages: gigabytePages, modeBasedExecute: inputs.modeBasedExecute)
    let stage = EPTStage(format: format, root: d.word(0), accessedDirty: d.no)
    let walk = hostWalk(format)
    premise = d.and(
      premise,
      d.and(walk.complete, d.equal(walk.stopLevel, d.word(UInt64(shape.hostLevel)))))
    hostPermits = d.not(stage.fault(d, walk, gpa: gpa, purpose: .final, context: context).failed)
    hpa = walk.physical
  case .npt(let hostLevels, let bits):
    let stage = NPTStage(
      d, levels: hostLevels, addressBits: bits, root: d.word(0),
      executeDisable: hostExecuteDisable)
    let walk = hostWalk(stage.format)
    premise = d.and(
      premise,
      d.and(walk.complete, d.equal(walk.stopLevel, d.word(UInt64(shape.hostLevel)))))
    hostPermits = d.not(stage.fault(d, walk, gpa: gpa, purpose: .final, context: context).failed)
    hpa = walk.physical
  }
  if !inputs.hostPath.isEmpty {
    hostLeaf = inputs.hostPath[inputs.hostPath.count - 1]
    for entry in inputs.hostPath.dropLast() {
      hostInherited = hostInherited.adding(
        d, entry: entry, nested: configuration.nested, executeDisable: hostExecuteDisable)
    }
  }

  // The derived leaf, walked by the hardware under the shadow's controls (WALK64 over S).
  let request = ShadowLeafRequest(
    guestLeaf: leaf, inherited: inherited, hostLeaf: hostLeaf, hostInherited: hostInherited,
    linear: inputs.linear, access: inputs.fault, control: guest,
    hostExecuteDisable: hostExecuteDisable, modeBasedExecute: inputs.modeBasedExecute,
    hostWritable: inputs.hostWritable, logDirty: inputs.logDirty, pageTable: inputs.pageTable)
  let shadowLeaf = derivation.derive(d, shape, request)
  let hardware = shadowHardwareControl(d, guest)
  let shadow = shadowLeafPermits(
    d, shape, leaf: shadowLeaf, linear: inputs.linear, access: inputs.access, control: hardware)

  let accessedDirty = d.and(
    d.bit(leaf, X86Bit.accessed), d.implies(inputs.access.write, d.bit(leaf, X86Bit.dirty)))
  let writeAllowed = d.implies(
    inputs.access.write,
    d.all(inputs.hostWritable, d.not(inputs.logDirty), d.not(inputs.pageTable)))
  let conclusion = d.implies(
    shadow.permits,
    d.all(
      guestPermits, hostPermits, d.equal(shadow.address, hpa), accessedDirty,
      writeAllowed))
  return ShadowEntryLemma(
    premise: premise, conclusion: conclusion, shadowLeaf: shadowLeaf,
    shadowPermits: shadow.permits, compositionPermits: d.and(guestPermits, hostPermits),
    compositionAddress: hpa)
}

/// Whether the hardware, walking a shadow whose non-leaf entries are
/// ``shadowTableEntry(_:frame:)`` and whose leaf at `shape.shadowLevel` is `leaf`, permits
/// `access` under `control`, and where it lands: the model's WALK64 steps 4–6 and 8.
public func shadowLeafPermits<D: BitVectorDomain>(
  _ d: D, _ shape: ShadowLeafShape, leaf: D.Word, linear: D.Word, access: AccessDescriptor<D>,
  control: GuestControl<D>
) -> (permits: D.Flag, address: D.Word) {
  let format = X86Format<D>(
    levels: shape.configuration.guestLevels, addressBits: shape.hostAddressBits,
    vendor: shape.configuration.vendor, gigabytePages: true,
    executeDisable: control.executeDisable)
  let table = shadowTableEntry(d, frame: d.word(0x1000))
  let walk = walkTables(d, format, root: d.word(0), address: linear, enabled: d.yes) {
    _, level, _ in
    let value = level > shape.shadowLevel ? table : level == shape.shadowLevel ? leaf : d.word(0)
    return FetchedEntry(value: value, failed: d.no)
  }
  let permits = d.and(
    walk.complete, d.not(checkPermissions(d, X86Rights(d, walk), access, control).denied))
  return (permits, walk.physical)
}
