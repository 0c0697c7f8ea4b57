/// The hypervisor semantics a target is judged against: what a trace operation means, which
/// cached translations it invalidates and which tags separate them (docs/fuzzing.md, "modes").
///
/// | operation          | nested (§4, §6.2)                | shadow (§5, §6.4)        | paravirtual (§5.8) |
/// |--------------------|----------------------------------|--------------------------|--------------------|
/// | tags of guest TLB  | VPID, PCID, EP4TA                | PCID                     | PCID               |
/// | INVVPID            | linear/combined of the VPID      | hardware only: no effect | no effect          |
/// | INVEPT             | combined and guest-physical      | guest-physical only      | no effect          |
/// | VPID write         | switches the tag                 | no guest-visible effect  | refused            |
/// | nested-root write  | switches the EP4TA               | replaces the P2M         | refused            |
/// | guest tables hold  | guest-physical frames            | guest-physical frames    | machine frames     |
/// | batch              | guest writes, no validation      | guest writes             | `mmu_update`       |
public enum OracleMode: String, CaseIterable, Hashable, Sendable {
  /// Hardware nested paging: the two-dimensional walk over the guest's tables and EPT or NPT.
  case nested
  /// Shadow paging: the guest sees native paging over a guest-physical map; exits are the
  /// hypervisor's business.
  case shadow
  /// Xen-style paravirtual paging: machine-frame tables, validated updates.
  case paravirtual

  /// Whether VPIDs and EP4TAs tag the guest's cached linear translations (only the hardware's
  /// combined mappings under nested paging; a shadow or PV guest's virtual TLB is its own).
  var tagsByVirtualMachine: Bool { self == .nested }
}
