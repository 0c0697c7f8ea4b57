/// The architecture's allowed nondeterminism that a single walk exposes (SEMANTICS §8), as
/// explicit parameters rather than choices buried in code.
///
/// The concrete oracle enumerates ``Choices/all`` and accepts any outcome one of them yields;
/// the prover makes each a free Boolean. Capabilities (execute-only EPT, 1-GiB pages,
/// mode-based execute, 5-level paging) are not choices: they are part of the snapshot.
/// TLB staleness and eviction (SEMANTICS §6) concern sequences of accesses and are modelled
/// where sequences are (the oracle), not in one walk.
public struct Choices<D: BitVectorDomain> {
  /// §1.8: whether a faulting walk sets A in the non-leaf guest entries it traversed (QEMU's
  /// TCG walker) or leaves them alone (KVM's and Xen's software walkers). The leaf is never
  /// touched by a faulting walk either way.
  public var accessedOnFault: D.Flag
  /// §4.1 IMPL: whether the guest's A/D writes (step 5) happen before the final nested
  /// translation (step 7), or after it (KVM's emulated walker translates the final GPA first).
  public var accessedDirtyBeforeFinal: D.Flag
  /// §2.6: whether an EPT violation on a guest A/D write also sets qualification bit 0 (read).
  public var readBitOnAccessedDirtyWrite: D.Flag
  /// §3.2 UNVERIFIED: whether guest page-table reads, performed as writes, set D in the NPT
  /// leaf that maps the guest table.
  public var nestedDirtyOnTableRead: D.Flag
  /// §2.6 UNVERIFIED: whether EPT violations on the final translation report the guest
  /// linear address's user/writable/executable rights in qualification bits 9–11.
  public var advancedQualification: D.Flag

  /// Makes a set of choices.
  public init(
    accessedOnFault: D.Flag, accessedDirtyBeforeFinal: D.Flag,
    readBitOnAccessedDirtyWrite: D.Flag, nestedDirtyOnTableRead: D.Flag,
    advancedQualification: D.Flag
  ) {
    self.accessedOnFault = accessedOnFault
    self.accessedDirtyBeforeFinal = accessedDirtyBeforeFinal
    self.readBitOnAccessedDirtyWrite = readBitOnAccessedDirtyWrite
    self.nestedDirtyOnTableRead = nestedDirtyOnTableRead
    self.advancedQualification = advancedQualification
  }
}

extension Choices: Sendable where D.Flag: Sendable {}

extension Choices where D == Concrete {
  /// KVM's software walker: no A on faulting walks, final translation before A/D writes, no
  /// read bit on A/D-write violations, no NPT D on table reads, no advanced qualification.
  public static let kvm = Choices(
    accessedOnFault: false, accessedDirtyBeforeFinal: false, readBitOnAccessedDirtyWrite: false,
    nestedDirtyOnTableRead: false, advancedQualification: false)

  /// Every combination: the set the oracle accepts outcomes from.
  public static let all: [Choices<Concrete>] = (0..<32).map { n in
    Choices(
      accessedOnFault: n & 1 != 0, accessedDirtyBeforeFinal: n & 2 != 0,
      readBitOnAccessedDirtyWrite: n & 4 != 0, nestedDirtyOnTableRead: n & 8 != 0,
      advancedQualification: n & 16 != 0)
  }
}
