import Machine
import ReferenceModel
import Testing
import Workloads

@testable import FastMMU

/// The fast MMU's shadow-leaf rule (`ShadowLeafRights.derive` and `ShadowEntry.leaf`, SEMANTICS
/// §5.2) against the reference model's (`deriveShadowLeaf`, whose entry lemma the prover
/// proves): on random guest paths, host paths, registers and faults where the hypervisor
/// installs a leaf — the guest walk of the faulting access succeeded and the host translated
/// it — the fast MMU's leaf never lets an access through that the model's leaf stops, and
/// where both let it through they land on the same host address. The test only reads both;
/// the fast MMU's source does not import the model.
@Suite("The fast MMU's shadow leaves against the reference derivation")
struct ShadowLeafDerivationTests {
  static let samples = 20_000

  enum HostFormat: String, CaseIterable, Sendable {
    case ept, npt
  }

  @Test(
    "The fast MMU's leaf never grants more than the model's derivation",
    arguments: HostFormat.allCases)
  func fastLeafGrantsNoMore(format: HostFormat) throws {
    var random = SeededGenerator(seed: format == .ept ? 11 : 12)
    let d = Concrete()
    let configuration: Configuration
    switch format {
    case .ept:
      configuration = Configuration(
        guestLevels: 4,
        nested: .ept(levels: 4, addressBits: 46, executeOnly: true, gigabytePages: true))
    case .npt:
      configuration = Configuration(
        guestLevels: 4, vendor: .amd, nested: .npt(levels: 4, addressBits: 46))
    }
    let shape = ShadowLeafShape(
      configuration: configuration, guestLevel: 1, hostLevel: 1, shadowLevel: 1,
      hostAddressBits: 46)
    let processor = Processor(vendor: format == .ept ? .intel : .amd)
    var installed = 0
    var compared = 0
    var sameRights = 0
    for _ in 0..<Self.samples {
      let sample = Sample(format: format, random: &random)
      let inputs = sample.inputs(d)
      // The hypervisor derives a leaf only where the composition permits the faulting access.
      let faulting = shadowEntryLemma(d, shape, inputs)
      guard faulting.premise, faulting.compositionPermits else { continue }
      compared += 1
      let registers = GuestRegisters(
        cr0: sample.cr0, cr3: 0, cr4: sample.cr4, efer: sample.efer, rflags: sample.rflags,
        pkru: sample.pkru, pkrs: sample.pkrs)
      let control = try #require(PagingControl(registers, processor: processor))
      let request = ShadowLeafRights.Request(
        guest: sample.guestRights, guestDirty: sample.fault.kind == .write || sample.leafDirty,
        access: sample.fault, host: sample.hostRights, pageTable: sample.pageTable,
        control: control)
      let fastLeaf = ShadowLeafRights.derive(request).map {
        ShadowEntry.leaf(
          faulting.compositionAddress >> 12, rights: $0,
          key: UInt8(truncatingIfNeeded: sample.guestPath[3] >> 59 & 0xF))
      }
      if fastLeaf != nil { installed += 1 }
      let modelLeaf = faulting.shadowLeaf
      let guest = GuestControl(
        d, cr0: sample.cr0, cr3: 0, cr4: sample.cr4, efer: sample.efer, rflags: sample.rflags,
        pkru: sample.pkru, pkrs: sample.pkrs, addressBits: 46)
      let hardware = shadowHardwareControl(d, guest)
      var same = true
      for access in Self.accesses {
        let descriptor = AccessDescriptor(d, access)
        let model = shadowLeafPermits(
          d, shape, leaf: modelLeaf, linear: sample.linear, access: descriptor, control: hardware)
        let fast = shadowLeafPermits(
          d, shape, leaf: fastLeaf ?? 0, linear: sample.linear, access: descriptor,
          control: hardware)
        if fast.permits != model.permits { same = false }
        guard fast.permits else { continue }
        #expect(
          model.permits,
          """
          \(format) \(sample): fast leaf \(hex(fastLeaf ?? 0)) permits \(access), the model's \
          leaf \(hex(modelLeaf)) does not
          """)
        if model.permits { #expect(fast.address == model.address) }
      }
      if same { sameRights += 1 }
    }
    // The samples reach the derivation often, and both rules install leaves.
    #expect(compared > Self.samples / 10)
    #expect(installed > compared / 2)
    // Where they differ the fast MMU emulates (protection keys with CR0.WP = 0): rare.
    #expect(sameRights > compared * 9 / 10)
  }

  static let accesses: [Access] = AccessKind.allCases.flatMap { kind in
    [Access(kind, user: false), Access(kind, user: true), Access(kind, implicit: true)]
  }

  /// One random situation: a 4-level guest path to a 4-KiB leaf, a 4-level host path, the
  /// guest's registers and the faulting access.
  struct Sample: CustomStringConvertible {
    var format: HostFormat
    var guestPath: [UInt64]
    var hostPath: [UInt64]
    var linear: UInt64
    var fault: Access
    var cr0, cr4, efer, rflags, pkru, pkrs: UInt64
    var pageTable: Bool

    init(format: HostFormat, random: inout SeededGenerator) {
      func chance(_ percent: UInt64) -> Bool {
        UInt64.random(in: 0..<100, using: &random) < percent
      }
      self.format = format
      let nxe = chance(80)
      func guestEntry(leaf: Bool) -> UInt64 {
        var e: UInt64 = 1 | 1 << 5 | UInt64.random(in: 0x100..<0x2000, using: &random) << 12
        if chance(70) { e |= 1 << 1 }
        if chance(70) { e |= 1 << 2 }
        if nxe && chance(25) { e |= 1 << 63 }
        if leaf {
          if chance(60) { e |= 1 << 6 }
          if chance(20) { e |= UInt64.random(in: 0..<16, using: &random) << 59 }
        }
        return e
      }
      guestPath = (0..<4).map { guestEntry(leaf: $0 == 3) }
      func hostEntry(leaf: Bool) -> UInt64 {
        let frame = UInt64.random(in: 0x100..<0x2000, using: &random) << 12
        switch format {
        case .ept:
          let rights: [UInt64] = [0b001, 0b011, 0b101, 0b111, 0b100]
          // Write-back memory type in the leaf; bits 5:3 are reserved above it.
          return frame | rights[Int.random(in: 0..<rights.count, using: &random)]
            | (leaf ? 6 << 3 : 0)
        case .npt:
          var e: UInt64 = frame | 1 | 1 << 5
          if chance(90) { e |= 1 << 2 }
          if chance(75) { e |= 1 << 1 }
          if chance(25) { e |= 1 << 63 }
          return e
        }
      }
      hostPath = (0..<4).map { hostEntry(leaf: $0 == 3) }
      linear = UInt64.random(in: 0..<(1 << 47), using: &random)
      let kinds: [AccessKind] = [.read, .write, .fetch]
      let kind = kinds[Int.random(in: 0..<3, using: &random)]
      let mode = Int.random(in: 0..<3, using: &random)
      fault =
        mode == 0
        ? Access(kind, user: true) : mode == 1 ? Access(kind) : Access(kind, implicit: true)
      if fault.kind == .write { guestPath[3] |= 1 << 6 }  // the walk set D
      cr0 = 0x8000_0011 | (chance(60) ? 1 << 16 : 0)
      cr4 =
        0x20 | (chance(40) ? 1 << 20 : 0) | (chance(40) ? 1 << 21 : 0)
        | (chance(20) ? 1 << 22 : 0) | (chance(20) ? 1 << 24 : 0)
      efer = 0x500 | (nxe ? 1 << 11 : 0)
      rflags = chance(30) ? 0x40002 : 0x2
      pkru = chance(50) ? 0 : UInt64(UInt32.random(in: 0...UInt32.max, using: &random))
      pkrs = chance(50) ? 0 : UInt64(UInt32.random(in: 0...UInt32.max, using: &random))
      pageTable = chance(15)
    }

    var leafDirty: Bool { guestPath[3] & 1 << 6 != 0 }

    /// The guest rights as the fast MMU accumulates them: U, W, X over every level.
    var guestRights: UInt8 {
      let nxe = efer & 1 << 11 != 0
      return guestPath.reduce(Rights.guestAll) {
        $0 & Rights.of($1, executeDisableEnabled: nxe)
      }
    }

    /// The host rights as the fast MMU reports them for the final translation.
    var hostRights: UInt8 {
      switch format {
      case .ept:
        let rwx = hostPath.reduce(UInt64(7)) { $0 & $1 } & 7
        return UInt8(rwx) << 3
      case .npt:
        let accumulated = hostPath.reduce(Rights.guestAll) {
          $0 & Rights.of($1, executeDisableEnabled: true)
        }
        return Rights.nestedRead | (accumulated & Rights.write) << 3
          | (accumulated & Rights.execute) << 3
      }
    }

    func inputs(_ d: Concrete) -> ShadowEntryLemmaInputs<Concrete> {
      ShadowEntryLemmaInputs(
        guestPath: guestPath, hostPath: hostPath, linear: linear,
        fault: AccessDescriptor(d, fault), access: AccessDescriptor(d, fault), cr0: cr0,
        cr4: cr4, efer: efer, rflags: rflags, pkru: pkru, pkrs: pkrs, hostEFER: 0xD00,
        modeBasedExecute: false, hostWritable: true, logDirty: false, pageTable: pageTable)
    }

    var description: String {
      "guest \(guestPath.map(hex)) host \(hostPath.map(hex)) at \(hex(linear)), fault \(fault), "
        + "CR0 \(hex(cr0)) CR4 \(hex(cr4)) EFER \(hex(efer)), page table \(pageTable)"
    }
  }
}
