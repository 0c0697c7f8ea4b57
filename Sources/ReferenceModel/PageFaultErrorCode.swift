/// The page-fault error code (SEMANTICS §1.6; Intel SDM Vol. 3A §4.7):
///
/// | bit | name | set when                                                            |
/// |-----|------|---------------------------------------------------------------------|
/// | 0   | P    | the fault is not a not-present fault (RSVD, protection, PK)         |
/// | 1   | W/R  | the access was a write                                              |
/// | 2   | U/S  | the access was user-mode                                            |
/// | 3   | RSVD | a present entry on the path had a reserved bit set                  |
/// | 4   | I/D  | the access was a fetch and CR4.SMEP = 1 or EFER.NXE = 1             |
/// | 5   | PK   | the protection-key check denied                                     |
///
/// W/R, U/S and I/D describe the access, not the page, and are reported for every kind of
/// fault. (Bits 6, 7, 15 and 31 up — shadow stack, HLAT, SGX, AMD RMP — are out of scope.)
enum ErrorCodeBit {
  static let present = 0
  static let write = 1
  static let user = 2
  static let reserved = 3
  static let fetch = 4
  static let key = 5
}

/// The bits of the error code that describe the access (WALK64 step 3, `ec0`).
func accessErrorCode<D>(
  _ d: D, _ access: AccessDescriptor<D>, _ control: GuestControl<D>
) -> D.Word {
  let reportsFetch = d.and(access.fetch, d.or(control.smep, control.executeDisable))
  return d.bitOr(
    d.bitOr(
      d.bits(access.write, at: ErrorCodeBit.write), d.bits(access.user, at: ErrorCodeBit.user)),
    d.bits(reportsFetch, at: ErrorCodeBit.fetch))
}

/// A full error code: the access bits plus P, RSVD and PK as the fault decides.
func pageFaultErrorCode<D>(
  _ d: D, _ access: AccessDescriptor<D>, _ control: GuestControl<D>,
  present: D.Flag, reserved: D.Flag, key: D.Flag
) -> D.Word {
  d.bitOr(
    accessErrorCode(d, access, control),
    d.bitOr(
      d.bits(present, at: ErrorCodeBit.present),
      d.bitOr(d.bits(reserved, at: ErrorCodeBit.reserved), d.bits(key, at: ErrorCodeBit.key))))
}
