// Bit positions written out from SEMANTICS §1.1, §1.3, §1.6, §2.2, §2.6 and §3.3, so that every
// expectation in this target is spelled in the manual's terms and never borrowed from the model.

/// x86 paging-entry bits (SEMANTICS §1.3), for guest tables and AMD nested tables.
enum X86 {
  /// P, bit 0.
  static let p: UInt64 = 1 << 0
  /// R/W, bit 1.
  static let w: UInt64 = 1 << 1
  /// U/S, bit 2.
  static let u: UInt64 = 1 << 2
  /// A, bit 5.
  static let a: UInt64 = 1 << 5
  /// D, bit 6 (leaves).
  static let d: UInt64 = 1 << 6
  /// PS, bit 7 (PDE, PDPTE); PAT in a PTE.
  static let ps: UInt64 = 1 << 7
  /// G, bit 8 in a leaf; reserved in PML4E/PML5E on AMD.
  static let bit8: UInt64 = 1 << 8
  /// XD, bit 63 (reserved unless EFER.NXE = 1).
  static let xd: UInt64 = 1 << 63
  /// P | R/W | U/S: the permissive entry.
  static let prw: UInt64 = p | w | u
  /// The protection key `k` in bits 62:59.
  static func key(_ k: UInt64) -> UInt64 { k << 59 }
  /// Bit `n` alone.
  static func bit(_ n: Int) -> UInt64 { 1 << UInt64(n) }
}

/// Page-fault error-code bits (SEMANTICS §1.6), also EXITINFO1 bits 0–5 of #NPF (§3.3).
enum PF {
  /// P: 0 for a not-present fault.
  static let p: UInt64 = 1 << 0
  /// W/R: a write.
  static let w: UInt64 = 1 << 1
  /// U/S: a user-mode access.
  static let u: UInt64 = 1 << 2
  /// RSVD: a reserved bit was set.
  static let rsvd: UInt64 = 1 << 3
  /// I/D: an instruction fetch (with SMEP or NXE).
  static let id: UInt64 = 1 << 4
  /// PK: the protection-key check denied.
  static let pk: UInt64 = 1 << 5
}

/// EXITINFO1 bits of #VMEXIT(NPF) beyond the error code (SEMANTICS §3.3).
enum NPF {
  /// Bit 32: the fault translated the final guest physical address.
  static let final: UInt64 = 1 << 32
  /// Bit 33: the fault translated a guest page-table access.
  static let table: UInt64 = 1 << 33
}

/// EPT entry bits (SEMANTICS §2.2).
enum EPTE {
  /// R, bit 0.
  static let r: UInt64 = 1 << 0
  /// W, bit 1.
  static let w: UInt64 = 1 << 1
  /// X (XS with mode-based execute), bit 2.
  static let x: UInt64 = 1 << 2
  /// Bit 7: a large page in a PDE or PDPTE.
  static let ps: UInt64 = 1 << 7
  /// A, bit 8 (with EPTP[6]).
  static let a: UInt64 = 1 << 8
  /// D, bit 9 (with EPTP[6]).
  static let d: UInt64 = 1 << 9
  /// XU, bit 10 (mode-based execute).
  static let xu: UInt64 = 1 << 10
  /// R | W | X.
  static let rwx: UInt64 = r | w | x
  /// R | W | X, write-back: the leaf that allows everything.
  static let all: UInt64 = rwx | (6 << 3)
  /// Memory type `t` in bits 5:3.
  static func type(_ t: UInt64) -> UInt64 { t << 3 }
  /// Write-back, memory type 6.
  static let wb: UInt64 = 6 << 3
}

/// EPT-violation exit-qualification bits (SEMANTICS §2.6).
enum Qual {
  /// Bit 0: a data read.
  static let read: UInt64 = 1 << 0
  /// Bit 1: a data write.
  static let write: UInt64 = 1 << 1
  /// Bit 2: an instruction fetch.
  static let fetch: UInt64 = 1 << 2
  /// Bit 3: AND of R over the entries used.
  static let readable: UInt64 = 1 << 3
  /// Bit 4: AND of W.
  static let writable: UInt64 = 1 << 4
  /// Bit 5: AND of X (XS).
  static let executable: UInt64 = 1 << 5
  /// Bit 6: AND of XU (mode-based execute).
  static let userExecutable: UInt64 = 1 << 6
  /// Bit 7: the guest-linear address is valid.
  static let linearValid: UInt64 = 1 << 7
  /// Bit 8: the final translation, not a guest paging-structure access.
  static let final: UInt64 = 1 << 8
  /// Bits 7 and 8: the final translation of a valid guest-linear address.
  static let finalLinear: UInt64 = linearValid | final
  /// Bit 9 (advanced): the linear address is user-mode.
  static let userAddress: UInt64 = 1 << 9
  /// Bit 10 (advanced): the linear address is writable.
  static let writableAddress: UInt64 = 1 << 10
  /// Bit 11 (advanced): the linear address is executable.
  static let executableAddress: UInt64 = 1 << 11
}

/// Control-register bits (SEMANTICS §1.1).
enum CR0 {
  static let pe: UInt64 = 1 << 0
  static let wp: UInt64 = 1 << 16
  static let pg: UInt64 = 1 << 31
}

/// CR4 bits (SEMANTICS §1.1).
enum CR4 {
  static let pae: UInt64 = 1 << 5
  static let la57: UInt64 = 1 << 12
  static let smep: UInt64 = 1 << 20
  static let smap: UInt64 = 1 << 21
  static let pke: UInt64 = 1 << 22
  static let pks: UInt64 = 1 << 24
}

/// EFER bits (SEMANTICS §1.1).
enum EFER {
  static let lme: UInt64 = 1 << 8
  static let lma: UInt64 = 1 << 10
  static let nxe: UInt64 = 1 << 11
}

/// RFLAGS.AC, bit 18.
let rflagsAC: UInt64 = 1 << 18
