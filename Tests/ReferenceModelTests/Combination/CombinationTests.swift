import Machine
import ReferenceModel
import Testing

// The exhaustive combination test, in the spirit of kvm-unit-tests `x86/access.c`: subsets of
// {P, R/W, U/S, XD, A, D, PS, one reserved-candidate bit} in a directory entry and in a leaf
// entry, × every setting of {CR0.WP, CR4.SMEP, CR4.SMAP, EFLAGS.AC, EFER.NXE}, × {CPL 0, CPL 3}
// × {read, write, fetch} plus implicit reads and writes, at 4 KiB and 2 MiB, against
// `expectedResult` (CombinationExpectation.swift), which is written from SEMANTICS §1 alone.
//
// What is enumerated (`drawn`, `leafIsReached`): every flag set of each entry, except that the
// classes the walk cannot tell apart are each represented by their least and greatest member —
// P = 0 (nothing else is examined), P = 1 with the candidate bit reserved at that entry (a
// terminal reserved-bit fault), and a leaf that is never read (the directory entry stopped the
// walk or is itself the leaf). That is 100 directory × 68 leaf flag sets at 4 KiB and 68 × 100
// at 2 MiB where the leaf is reached: 1,499,136 model calls in all (862,208 at 4 KiB, 636,928 at
// 2 MiB), plus 93,632 with A set on faulting walks. The full 2^8 × 2^8 product would be
// 33.5 million calls, about 25 CPU-minutes in a debug build (~45 µs a call), so it is not run.
//
// Each parameterized case is one page size and one setting of the five control bits, so Swift
// Testing runs the 64 cases in parallel. The table is built once per case and only the two
// entries change between combinations.

@Suite("Exhaustive combinations of entry flags, control bits and accesses (SEMANTICS §1.4–§1.8)")
struct CombinationTests {
  /// The snapshot of `layout` with both entries zero, under `controls`.
  static func machine(_ layout: CombinationLayout, _ controls: ControlBits) -> MachineState {
    var memory = PhysicalMemory()
    memory[0x1008] = 0x2000 | X86.prw | X86.a
    switch layout {
    case .small:
      memory[0x2010] = 0x3000 | X86.prw | X86.a
    case .large:
      memory[0x60_0020] = 0x700_0000 | X86.prw | X86.a | X86.d
      memory[0x60_2020] = 0x710_0000 | X86.prw | X86.a | X86.d
    }
    let registers = GuestRegisters(
      cr0: CR0.pg | CR0.pe | (controls.wp ? CR0.wp : 0), cr3: 0x1000,
      cr4: CR4.pae | (controls.smep ? CR4.smep : 0) | (controls.smap ? CR4.smap : 0),
      efer: EFER.lme | EFER.lma | (controls.nxe ? EFER.nxe : 0),
      rflags: 0x2 | (controls.ac ? rflagsAC : 0))
    return MachineState(
      processor: Processor(vendor: .intel, physicalAddressBits: 46, gigabytePages: true),
      guest: registers, memory: memory)
  }

  /// The leaf entries the combination writes: one per page table for 4 KiB, the PDE for 2 MiB.
  static func leafEntries(_ layout: CombinationLayout, _ leaf: EntryFlags) -> [(UInt64, UInt64)] {
    switch layout {
    case .small:
      [
        (0x40_0020, CombinationLayout.encode(leaf, address: 0x123_4000, reservedBit: 1 << 51)),
        (0x40_2020, CombinationLayout.encode(leaf, address: 0x123_6000, reservedBit: 1 << 51)),
      ]
    case .large:
      [(0x4000_0018, CombinationLayout.encode(leaf, address: 0x60_0000, reservedBit: 1 << 13))]
    }
  }

  /// Whether the leaf entry is read at all: only below a present, well-formed, non-leaf
  /// directory entry (SEMANTICS §1.7 steps 4b–4g).
  static func leafIsReached(_ directory: EntryFlags, _ layout: CombinationLayout, nxe: Bool)
    -> Bool
  {
    guard directory.contains(.p), !directory.contains(.ps) else { return false }
    if !nxe && directory.contains(.xd) { return false }
    return layout == .small || !directory.contains(.r)
  }

  /// The flag sets drawn for an entry. Every subset of the eight flags, except inside the two
  /// classes the walk cannot tell apart — P = 0 (no other bit is examined, SEMANTICS §1.6,
  /// §1.7 step 4b) and P = 1 with the candidate bit reserved at this entry (a terminal
  /// reserved-bit fault, step 4d) — each of which is represented by its least and greatest
  /// member (for P = 0: no flag, and every flag but P).
  static func drawn(reserved: (EntryFlags) -> Bool) -> [EntryFlags] {
    let notPresent = EntryFlags.everySubset.filter { !$0.contains(.p) }
    let malformed = EntryFlags.everySubset.filter { $0.contains(.p) && reserved($0) }
    let rest = EntryFlags.everySubset.filter { $0.contains(.p) && !reserved($0) }
    func ends(_ c: [EntryFlags]) -> [EntryFlags] {
      guard let first = c.first, let last = c.last else { return [] }
      return [first, last]
    }
    return ends(notPresent) + ends(malformed) + rest
  }

  /// A leaf that is never read is represented by no flag and every flag.
  static let unreachedLeaf: [EntryFlags] = [[], EntryFlags(rawValue: 0xFF)]

  /// Runs every drawn combination of `layout` under `controls` with `choices`; returns how
  /// many were checked and a readable report of the first disagreements.
  static func run(
    _ layout: CombinationLayout, _ controls: ControlBits, accessedOnFault: Bool
  ) throws -> (checked: Int, failed: Int, report: String) {
    var state = try ModelState<Concrete>(machine(layout, controls))
    let d = Concrete()
    var choices = Choices<Concrete>.kvm
    choices.accessedOnFault = accessedOnFault
    let accesses = CombinationAccess.all.map { a in
      (
        a,
        AccessDescriptor(d, Access(a.kind, user: a.cpl == 3 && !a.implicit, implicit: a.implicit))
      )
    }
    var failures: [String] = []
    var failed = 0
    var checked = 0

    let directories = drawn(
      reserved: layout == .small ? { $0.contains([.ps, .r]) } : { $0.contains(.r) })
    let leaves = drawn(
      reserved: layout == .small ? { $0.contains(.r) } : { $0.contains([.ps, .r]) })
    for directory in directories {
      state.memory[layout.directoryAddress] = CombinationLayout.encode(
        directory, address: layout.directoryTarget, reservedBit: layout.directoryReservedBit)
      let reached = leafIsReached(directory, layout, nxe: controls.nxe)
      for leaf in reached ? leaves : unreachedLeaf {
        for (address, value) in leafEntries(layout, leaf) { state.memory[address] = value }
        for (access, descriptor) in accesses {
          let t = ReferenceModel.translate(
            d, state, linear: CombinationLayout.linear, access: descriptor, choices: choices)
          var writes: [Write] = []
          for update in t.updates where update.happens {
            writes.append(Write(address: update.address, bits: update.bits))
          }
          writes.sort { $0.address < $1.address }
          let actual = CombinationExpectation(outcome: t.outcome, writes: writes)
          let expected = expectedResult(
            layout, directory: directory, leaf: leaf, controls: controls, access: access,
            accessedOnFault: accessedOnFault)
          checked += 1
          guard actual != expected else { continue }
          failed += 1
          if failures.count < 6 {
            failures.append(
              "\(layout) \(controls) \(access) directory \(directory) leaf \(leaf)\n"
                + "    expected \(expected)\n    model    \(actual)")
          }
        }
      }
    }
    return (checked, failed, failures.joined(separator: "\n"))
  }

  @Test(
    "Outcome, error code and A/D writes match the independent expectation for every combination",
    arguments: CombinationLayout.allCases, 0..<32)
  func everyCombination(layout: CombinationLayout, controlNumber: Int) throws {
    let result = try Self.run(layout, ControlBits(number: controlNumber), accessedOnFault: false)
    #expect(result.checked > 0)
    #expect(
      result.failed == 0,
      "\(result.failed) of \(result.checked) combinations disagree; the first:\n\(result.report)")
  }

  /// SEMANTICS §1.8 IMPL: with A set on faulting walks (QEMU's walker), a faulting walk sets A
  /// in each traversed non-leaf entry that lacks it and never touches the leaf. Two control
  /// settings suffice here: the choice does not interact with the control bits.
  @Test(
    "With A set on faulting walks, every traversed non-leaf entry gains A and the leaf does not",
    arguments: CombinationLayout.allCases, [0b10111, 0b01000])
  func everyCombinationSettingAccessedOnFault(layout: CombinationLayout, controlNumber: Int)
    throws
  {
    let result = try Self.run(layout, ControlBits(number: controlNumber), accessedOnFault: true)
    #expect(result.checked > 0)
    #expect(
      result.failed == 0,
      "\(result.failed) of \(result.checked) combinations disagree; the first:\n\(result.report)")
  }
}
