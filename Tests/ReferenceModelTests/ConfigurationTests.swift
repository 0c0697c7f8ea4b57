import Machine
import ReferenceModel
import Testing

/// Configurations the model refuses rather than guessing at: paging modes out of scope
/// (SEMANTICS §1.1), an EPTP that VM entry would reject (§2.1), vendor mismatches. Each refusal
/// is a `FormatError` naming the field at fault.
@Suite("Refused configurations")
struct ConfigurationTests {
  struct Refusal: CustomTestStringConvertible, Sendable {
    var name: String
    var field: String
    var change: @Sendable (inout MachineState) -> Void
    var testDescription: String { name }
  }

  static func base() -> MachineState {
    var s = Setup.ept()
    s.map(gva, to: dataGPA, bits: X86.prw)
    return s.machine()
  }

  static let refusals: [Refusal] = [
    Refusal(name: "32-bit paging (CR0.PG without CR4.PAE)", field: "guest.cr0") {
      $0.guest.cr4 &= ~CR4.pae
      $0.guest.efer = 0
    },
    Refusal(name: "PAE paging (CR4.PAE without EFER.LMA)", field: "guest.cr0") {
      $0.guest.efer = 0
    },
    Refusal(name: "EFER.LMA without CR0.PG", field: "guest.efer") { $0.guest.cr0 &= ~CR0.pg },
    Refusal(name: "CR3 bits above MAXPHYADDR", field: "guest.cr3") { $0.guest.cr3 |= 1 << 46 },
    Refusal(name: "EPT on an AMD processor", field: "nested.kind") {
      $0.processor.vendor = .amd
    },
    Refusal(name: "EPTP walk length 3 (bits 5:3 = 2)", field: "nested.eptp") {
      if case .ept(var e) = $0.nested {
        e.eptp = e.eptp & ~0x38 | 2 << 3
        $0.nested = .ept(e)
      }
    },
    Refusal(name: "EPTP memory type 1", field: "nested.eptp") {
      if case .ept(var e) = $0.nested {
        e.eptp = e.eptp & ~7 | 1
        $0.nested = .ept(e)
      }
    },
    Refusal(name: "EPTP reserved bit 8", field: "nested.eptp") {
      if case .ept(var e) = $0.nested {
        e.eptp |= 1 << 8
        $0.nested = .ept(e)
      }
    },
    Refusal(name: "EPTP address bit at N", field: "nested.eptp") {
      if case .ept(var e) = $0.nested {
        e.eptp |= 1 << UInt64(e.physicalAddressBits)
        $0.nested = .ept(e)
      }
    },
    Refusal(name: "NPT on an Intel processor", field: "nested.kind") {
      $0.nested = .npt(NestedPageTables(nCR3: 0x1000))
    },
    Refusal(name: "N_CR3 above the host's physical-address width", field: "nested.ncr3") {
      $0.processor.vendor = .amd
      $0.nested = .npt(NestedPageTables(nCR3: 1 << 48 | 0x1000))
    },
  ]

  @Test("The model refuses the configuration and names the field", arguments: refusals)
  func refused(_ r: Refusal) throws {
    var machine = Self.base()
    #expect(throws: Never.self) { try ConcreteModel(machine) }
    r.change(&machine)
    #expect {
      try ConcreteModel(machine)
    } throws: { error in
      (error as? FormatError)?.field == r.field
    }
  }

  @Test("Guest paging off (no PG, no LMA) is accepted, with and without nested paging")
  func pagingOffIsAccepted() throws {
    var s = Setup.native()
    s.controls.paging = false
    let t = try s.translate(0x1234_5678, .write)
    #expect(t.outcome == .translated(hostPhysical: 0x1234_5678))
    #expect(t.referenceCount == 0)
  }
}
