import Machine
import ReferenceModel
import Testing

/// SEMANTICS §1.7 step 7 and §1.8: accessed and dirty flags of the guest's own tables.
///
/// The native set-up puts the PML4, PDPT, PD and PT at 0x1000, 0x2000, 0x3000 and 0x4000, so
/// the entries for `gva` (indices 1, 2, 3, 4) are at 0x1008, 0x2010, 0x3018 and 0x4020.
@Suite("§1.8 Accessed and dirty flags")
struct AccessedDirtyTests {
  static let pml4e: UInt64 = 0x1008
  static let pdpte: UInt64 = 0x2010
  static let pde: UInt64 = 0x3018
  static let pte: UInt64 = 0x4020

  /// `gva` mapped with no A or D anywhere.
  static func fresh(leaf: UInt64 = X86.prw) -> Setup {
    var s = Setup.native(directory: X86.prw)
    s.map(gva, to: dataGPA, bits: leaf)
    return s
  }

  static func writes(_ pairs: [(UInt64, UInt64)]) -> Set<Write> {
    Set(pairs.map { Write(address: $0.0, bits: $0.1) })
  }

  @Test("A successful read sets A in every entry of the path and D in none")
  func readSetsAccessed() throws {
    let t = try Self.fresh().translate(gva, .read)
    #expect(t.hostPhysical == dataGPA | 0x567)
    #expect(
      Set(t.writes)
        == Self.writes([
          (Self.pml4e, X86.a), (Self.pdpte, X86.a), (Self.pde, X86.a), (Self.pte, X86.a),
        ]))
  }

  @Test("A fetch sets A only, like a read", arguments: [Access.fetch, .userFetch])
  func fetchSetsAccessed(access: Access) throws {
    let t = try Self.fresh().translate(gva, access)
    #expect(t.writes.allSatisfy { $0.bits == X86.a })
    #expect(t.writes.count == 4)
  }

  @Test("A successful write sets D in the leaf and nowhere else")
  func writeSetsDirtyInLeaf() throws {
    let t = try Self.fresh().translate(gva, .userWrite)
    #expect(
      Set(t.writes)
        == Self.writes([
          (Self.pml4e, X86.a), (Self.pdpte, X86.a), (Self.pde, X86.a), (Self.pte, X86.a | X86.d),
        ]))
  }

  @Test("A write to a 2-MiB page sets D in the PDE, the leaf")
  func writeToLargePage() throws {
    var s = Setup.native(directory: X86.prw)
    s.map(gva, to: 0x60_0000, level: 2, bits: X86.prw)
    let t = try s.translate(gva, .write)
    #expect(
      Set(t.writes)
        == Self.writes([(Self.pml4e, X86.a), (Self.pdpte, X86.a), (Self.pde, X86.a | X86.d)]))
  }

  @Test("A write to a 1-GiB page sets D in the PDPTE, the leaf")
  func writeToHugePage() throws {
    var s = Setup.native(directory: X86.prw)
    s.map(gva, to: 0x4000_0000, level: 3, bits: X86.prw)
    let t = try s.translate(gva, .write)
    #expect(Set(t.writes) == Self.writes([(Self.pml4e, X86.a), (Self.pdpte, X86.a | X86.d)]))
  }

  @Test("Nothing is written where A (and D, for a write) is already set")
  func noWriteWhenAlreadySet() throws {
    var s = Setup.native(directory: X86.prw | X86.a)
    s.map(gva, to: dataGPA, bits: X86.prw | X86.a | X86.d)
    #expect(try s.translate(gva, .write).writes.isEmpty)
    #expect(try s.translate(gva, .read).writes.isEmpty)
    // A set but D clear: a write sets only D, a read nothing.
    s.setGuestBits(of: gva, level: 1, to: X86.prw | X86.a)
    #expect(try s.translate(gva, .write).writes == [Write(address: Self.pte, bits: X86.d)])
    #expect(try s.translate(gva, .read).writes.isEmpty)
  }

  /// Faulting walks over a path with no A/D anywhere, and the entries each traverses as valid
  /// non-leaf entries (which §1.8 IMPL lets a walker mark accessed).
  struct FaultCase: CustomTestStringConvertible, Sendable {
    var name: String
    var level: Int
    var entry: UInt64
    var access: Access
    var traversed: [UInt64]
    var testDescription: String { name }
  }

  static let faults: [FaultCase] = [
    FaultCase(
      name: "protection fault on the leaf (user write, R/W = 0)", level: 1, entry: X86.p | X86.u,
      access: .userWrite, traversed: [pml4e, pdpte, pde]),
    FaultCase(
      name: "not-present leaf", level: 1, entry: 0, access: .write,
      traversed: [pml4e, pdpte, pde]),
    FaultCase(
      name: "reserved bit in the leaf", level: 1, entry: X86.prw | X86.bit(51), access: .read,
      traversed: [pml4e, pdpte, pde]),
    FaultCase(
      name: "reserved bit in the PDE", level: 2, entry: X86.prw | X86.bit(51), access: .read,
      traversed: [pml4e, pdpte]),
    FaultCase(
      name: "not-present PML4E", level: 4, entry: 0, access: .read, traversed: []),
    FaultCase(
      name: "SMAP fault on a 4-KiB leaf", level: 1, entry: X86.prw, access: .implicitRead,
      traversed: [pml4e, pdpte, pde]),
  ]

  static func faulting(_ c: FaultCase) -> Setup {
    var s = fresh()
    s.controls.smap = true
    s.setGuestBits(of: gva, level: c.level, to: c.entry)
    return s
  }

  @Test("A faulting walk never changes the leaf, under every allowed choice", arguments: faults)
  func leafUntouchedOnFault(_ c: FaultCase) throws {
    let model = try Self.faulting(c).model()
    for choices in Choices<Concrete>.all {
      let t = model.translate(gva, c.access, choices: choices)
      #expect(t.errorCode != nil)
      #expect(!t.writes.contains { $0.address == Self.pte })
    }
  }

  @Test("KVM's and Xen's walkers write nothing on a faulting walk", arguments: faults)
  func nothingWrittenOnFault(_ c: FaultCase) throws {
    let t = try Self.faulting(c).translate(gva, c.access, choices: .kvm)
    #expect(t.errorCode != nil)
    #expect(t.writes.isEmpty)
  }

  @Test(
    "QEMU's walker sets A in each traversed valid non-leaf entry of a faulting walk",
    arguments: faults)
  func accessedOnFault(_ c: FaultCase) throws {
    var choices = Choices<Concrete>.kvm
    choices.accessedOnFault = true
    let t = try Self.faulting(c).translate(gva, c.access, choices: choices)
    #expect(t.errorCode != nil)
    #expect(Set(t.writes) == Self.writes(c.traversed.map { ($0, X86.a) }))
  }

  @Test("perform applies the writes to memory; translate does not; a repeat writes nothing")
  func performApplies() throws {
    var model = try Self.fresh().model()
    let before = model.memory
    _ = model.translate(gva, .write)
    #expect(model.memory == before)
    let outcome = model.perform(gva, .write)
    #expect(outcome == .translated(hostPhysical: dataGPA | 0x567))
    let after = model.memory
    #expect(after[Self.pml4e] == before[Self.pml4e] | X86.a)
    #expect(after[Self.pdpte] == before[Self.pdpte] | X86.a)
    #expect(after[Self.pde] == before[Self.pde] | X86.a)
    #expect(after[Self.pte] == before[Self.pte] | X86.a | X86.d)
    #expect(model.translate(gva, .write).writes.isEmpty)
  }
}
