/// The classes of operation the generator draws from, and their weights (issue 5, item 3;
/// docs/fuzzing.md, "the operation mix").
public enum OperationClass: String, CaseIterable, Hashable, Sendable {
  /// An access to an interesting linear address, near a page or large-page boundary.
  case access
  /// A guest store into one of its paging entries: a flipped P, R/W, U/S, XD, PS, G, A/D, key
  /// or reserved bit, a frame retargeted (to another table, itself, data, an unbacked frame),
  /// a cleared entry, or the original value restored; often followed by INVLPG.
  case guestEntryWrite = "guest-entry-write"
  /// A guest store into a data page.
  case guestDataWrite = "guest-data-write"
  /// A hypervisor store into a nested (EPT/NPT) entry: R/W/X flips and misconfigurations,
  /// large-page and memory-type bits, reserved bits, retargets; followed or not by INVEPT.
  case nestedEntryWrite = "nested-entry-write"
  /// A hypervisor store into guest memory (a guest table behind the guest's back).
  case hostGuestWrite = "host-guest-write"
  /// CR0.WP, CR4.SMEP/SMAP/PGE/PKE/PKS/PCIDE, EFER.NXE, RFLAGS.AC, PKRU, PKRS.
  case controlToggle = "control-toggle"
  /// MOV to CR3: a reload, another PCID, with or without the no-flush bit.
  case cr3Write = "cr3-write"
  case invlpg
  case invpcid
  case invept
  case invvpid
  /// A new VPID (or ASID).
  case vpidWrite = "vpid-write"
  /// The nested root rewritten (EPTP A/D enable toggled).
  case nestedRootWrite = "nested-root-write"
  /// A paravirtual batch of one to four page-table updates.
  case batch
  /// A stale-translation probe: an access; a change to what it used (a guest entry on its
  /// path, a nested entry behind it, or a control toggle); a flush that covers the change —
  /// INVLPG, a CR3 write, a CR4.PGE toggle, INVEPT — or none; the same access again.
  case revisit
  /// A shared-table probe (SEMANTICS §5.9): an access; perhaps a store into the entry that
  /// mapped it (under shadow paging its table goes out of sync); a second entry made to name a
  /// table on the access's path (an alias, as a guest sharing page tables between mappings
  /// makes), perhaps with fewer rights; an access through the alias to a neighbour; the first
  /// access again, through the alias. Drawn only by the ``OperationMix/Focus/shadowStructure``
  /// focus.
  case aliasRevisit = "alias-revisit"
  /// A supervisor write with CR0.WP clear, then WP set and the same write again: a kernel
  /// patching read-only memory (SEMANTICS §1.5 rule 6, §5.1). Drawn only by the
  /// ``OperationMix/Focus/shadowStructure`` focus.
  case writeProtectWindow = "write-protect-window"
}

/// Weights over ``OperationClass``; a class with weight 0 is never drawn.
public struct OperationMix: Hashable, Sendable {
  /// The weight of each class.
  public var weights: [OperationClass: Int] {
    didSet { (classes, bounds) = Self.table(weights) }
  }
  /// The classes drawn, in declaration order, and the running sum of their weights: what
  /// ``draw(using:)`` rolls against, derived from ``weights`` once rather than at every draw.
  private var classes: [OperationClass]
  private var bounds: [Int]

  /// A mix with these weights.
  public init(_ weights: [OperationClass: Int]) {
    self.weights = weights
    (classes, bounds) = Self.table(weights)
  }

  private static func table(_ weights: [OperationClass: Int]) -> ([OperationClass], [Int]) {
    var classes: [OperationClass] = []
    var bounds: [Int] = []
    var total = 0
    for kind in OperationClass.allCases {
      let weight = weights[kind] ?? 0
      guard weight > 0 else { continue }
      total += weight
      classes.append(kind)
      bounds.append(total)
    }
    return (classes, bounds)
  }

  /// The default mix of a mode: accesses dominate; entry changes at every level with and
  /// without the flush that covers them; every control and flush appears.
  public static func standard(_ mode: OracleMode) -> OperationMix {
    var weights: [OperationClass: Int] = [
      .access: 48, .guestEntryWrite: 12, .guestDataWrite: 2, .nestedEntryWrite: 7,
      .hostGuestWrite: 1, .controlToggle: 5, .cr3Write: 4, .invlpg: 6, .invpcid: 2,
      .invept: 3, .invvpid: 1, .vpidWrite: 1, .nestedRootWrite: 1, .batch: 3, .revisit: 6,
    ]
    if mode == .paravirtual {
      weights[.batch] = 10
      weights[.guestEntryWrite] = 6
      weights[.nestedEntryWrite] = 2
      weights[.invept] = 1
      weights[.invvpid] = 1
      weights[.vpidWrite] = 1
      weights[.nestedRootWrite] = 1
      // A hypervisor store into a validated table bypasses the page types: outside what the
      // paravirtual semantics define (docs/fuzzing.md).
      weights[.hostGuestWrite] = 0
    }
    return OperationMix(weights)
  }

  /// What a focused mix leans on.
  public enum Focus: String, CaseIterable, Hashable, Sendable {
    /// Guest entry changes, the flushes that cover them and the accesses that meet them: TLB
    /// staleness, INVLPG, A/D tracking, shadow resynchronisation.
    case guestTables = "guest-tables"
    /// Nested (EPT/NPT) entry changes, with and without INVEPT, and nested-root rewrites.
    case nestedTables = "nested-tables"
    /// Control-register toggles (CR0.WP, CR4.PGE/SMEP/SMAP/PKE/PCIDE, EFER.NXE, RFLAGS.AC)
    /// and CR3 writes with and without the no-flush bit.
    case controls
    /// Shadow-page structure: tables reached through two paths of different rights, a table
    /// out of sync linked under a new entry, supervisor writes around a CR0.WP toggle — what
    /// the shadow-page role and resynchronisation get wrong (SEMANTICS §5.9).
    case shadowStructure = "shadow-structure"
  }

  /// The standard mix of `mode` with the classes of `focus` weighted up: a campaign that
  /// spends its operations where one family of bugs lives (docs/bug-catalogue.md).
  public static func focused(_ focus: Focus, _ mode: OracleMode) -> OperationMix {
    var mix = standard(mode)
    switch focus {
    case .guestTables:
      mix.weights[.guestEntryWrite] = 24
      mix.weights[.invlpg] = 10
      mix.weights[.revisit] = 16
      if mode == .paravirtual { mix.weights[.batch] = 20 }
    case .nestedTables:
      mix.weights[.nestedEntryWrite] = mode == .paravirtual ? 2 : 24
      mix.weights[.invept] = mode == .paravirtual ? 1 : 8
      mix.weights[.nestedRootWrite] = mode == .paravirtual ? 1 : 3
    case .controls:
      mix.weights[.controlToggle] = 20
      mix.weights[.cr3Write] = 12
      mix.weights[.invpcid] = 4
    case .shadowStructure:
      mix.weights[.aliasRevisit] = 20
      mix.weights[.writeProtectWindow] = 8
      mix.weights[.revisit] = 10
    }
    return mix
  }

  /// Draws a class with `random`, each with probability its weight over the total.
  func draw<R: RandomNumberGenerator>(using random: inout R) -> OperationClass {
    guard let total = bounds.last else { return .access }
    let roll = Int.random(in: 0..<total, using: &random)
    for (kind, bound) in zip(classes, bounds) where roll < bound { return kind }
    return .access
  }
}
