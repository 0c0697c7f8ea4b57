import Machine
import Testing
import Workloads

@testable import FastMMU

/// The permission maps a register write looks up (``PermissionMap``'s table of every
/// ``PermissionControls`` combination): the key holds every control the rules read, and the
/// looked-up map is the one the rules give.
@Suite struct PermissionTableTests {
  @Test func everyControlCombinationLooksUpTheMapItsRulesGive() {
    let processor = Processor(vendor: .intel)
    for bits in 0..<32 {
      var registers = GuestRegisters(
        cr0: 0x11, cr3: 0x1000, cr4: GuestSetup.cr4(levels: 4), efer: GuestSetup.efer)
      if bits & 1 != 0 { registers.cr0 |= ControlBit.cr0Paging }
      if bits & 2 != 0 { registers.cr0 |= ControlBit.cr0WriteProtect }
      if bits & 4 != 0 { registers.cr4 |= ControlBit.cr4SupervisorExecuteProtection }
      if bits & 8 != 0 { registers.cr4 |= ControlBit.cr4SupervisorAccessProtection }
      if bits & 16 != 0 { registers.rflags |= ControlBit.rflagsAlignmentCheck }
      guard let control = PagingControl(registers, processor: processor) else {
        Issue.record("controls \(bits) do not decode")
        continue
      }
      let controls = PermissionControls(control)
      #expect(controls.paging == control.paging && controls.writeProtect == control.writeProtect)
      #expect(controls.smep == control.smep && controls.smap == control.smap)
      #expect(controls.alignmentCheck == control.alignmentCheck)
      #expect(controls.index == bits)
      #expect(PermissionMap(control).allow == PermissionMap(computing: controls).allow)
    }
  }
}
