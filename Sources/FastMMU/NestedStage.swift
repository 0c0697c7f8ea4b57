import Machine

/// Why the 2D walk translates a guest-physical address (SEMANTICS §2.4, §4.1).
enum NestedPurpose {
  /// Reading a guest paging entry (WALK2D step 3b).
  case tableRead
  /// The access's final guest-physical address (WALK2D step 7).
  case final
}

/// The second dimension as the guest walk sees it: EPT, NPT, or none. One guest walk
/// (``GuestWalk``) runs over each, specialised at compile time, so the order and priority of
/// SEMANTICS §4.1 is written once.
protocol NestedStage {
  /// Translates `gpa` for `purpose`, counting each nested entry read in `references`. Returns
  /// the host physical address, or `nil` after a nested fault, which ``fault`` then holds.
  mutating func translate(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, linear: UInt64, guestUser: Bool,
    memory: MemoryView, references: inout Int
  ) -> UInt64?

  /// The fault of the last failed translation.
  var fault: Outcome { get }

  /// The rights the last successful translation accumulated, in the stage's own encoding (EPT:
  /// the raw R, W, X and XU bits; NPT: ``Rights`` U, W, X): what a later guest A/D write is
  /// checked against and what a combined paging-structure-cache entry keeps.
  var tableRights: UInt16 { get }

  /// The last successful translation's rights as ``Rights`` nested bits (R, W, and the execute
  /// right that applies to a linear address that is user-mode or not).
  func finalRights(guestUser: Bool) -> UInt8

  /// The level of the last successful translation's leaf (1 for a 4-KiB page): without guest
  /// paging, the size of the page a TLB entry covers.
  var leafLevel: Int { get }

  /// Whether a write through a cached copy of the last successful translation needs no nested
  /// A/D update: its leaf's dirty flag is set, or the nested tables have none.
  var dirty: Bool { get }

  /// SEMANTICS §4.1 step 5: the fault, if any, of writing A/D bits into the guest entry at
  /// `gpa`, whose page the walk read with `tableRights`. Only EPT without A/D flags can fail
  /// here: otherwise the read already required W.
  func tableWriteFault(_ gpa: UInt64, tableRights: UInt16, linear: UInt64) -> Outcome?
}

/// No nested paging: a guest-physical address is the host physical address. Native paging, the
/// hardware walk of shadow tables and the paravirtual walk run the guest walk over this.
struct IdentityStage: NestedStage {
  var fault: Outcome { .generalProtection }
  var tableRights: UInt16 { 0 }
  var dirty: Bool { true }
  var leafLevel: Int { 1 }

  func finalRights(guestUser: Bool) -> UInt8 { Rights.nestedAll }

  @inline(__always)
  mutating func translate(
    _ gpa: UInt64, _ purpose: NestedPurpose, _ access: Access, linear: UInt64, guestUser: Bool,
    memory: MemoryView, references: inout Int
  ) -> UInt64? { gpa }

  func tableWriteFault(_ gpa: UInt64, tableRights: UInt16, linear: UInt64) -> Outcome? { nil }
}
