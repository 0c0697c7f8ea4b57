// The bug catalogue exists only where FastMMU is built with NESTCHECK_BUGS: debug builds.
#if DEBUG
  import FastMMU
  import Machine
  import Testing
  import Workloads

  /// Every catalogued bug (``InjectedBug``) is live and reachable: on a short hand-written trace
  /// the MMU built with it observes something the correct MMU does not, and the correct MMU
  /// observes what the architecture says (derived by hand, SEMANTICS §1–§6).
  @Suite struct InjectedBugTests {
    /// A trace that exposes one bug: the mode and machine, the operations, and the result the
    /// correct MMU must report for the last one.
    struct Exposure {
      var mode: MMUMode
      var state: MachineState
      var configuration = MMUConfiguration.uncached
      var operations: [TraceOperation]
      var correctLast: TraceResult
    }

    static let wp: UInt64 = 1 << 16
    static let pge: UInt64 = 1 << 7
    static let pcide: UInt64 = 1 << 17
    static let smap: UInt64 = 1 << 21
    static let pke: UInt64 = 1 << 22
    static let ac: UInt64 = 1 << 18
    static let noFlush: UInt64 = 1 << 63
    static let key1: UInt64 = 1 << 59

    static func read(_ address: UInt64, user: Bool = false) -> TraceOperation {
      .access(linearAddress: address, Access(.read, user: user))
    }
    static func write(_ address: UInt64, user: Bool = false) -> TraceOperation {
      .access(linearAddress: address, Access(.write, user: user))
    }
    static func translated(_ hpa: UInt64) -> TraceResult {
      .outcome(.translated(hostPhysical: hpa))
    }
    static func pageFault(_ code: UInt64, _ address: UInt64) -> TraceResult {
      .outcome(.pageFault(errorCode: code, linearAddress: address))
    }

    /// A scenario mapping `Layout.data` to `Layout.dataFrame` with `leaf` bits, and backing the
    /// spare frame.
    static func scenario(_ nested: Scenario.Nested = .ept, leaf: UInt64 = Bits.userData)
      -> Scenario
    {
      var scenario = Scenario(nested)
      scenario.map(Layout.data, to: Layout.dataFrame, bits: leaf)
      scenario.back(Layout.spareFrame)
      return scenario
    }

    /// The guest-physical page of the guest table at `level` on `Layout.data`'s path.
    static func tablePage(_ scenario: Scenario, level: Int) -> UInt64 {
      scenario.entry(Layout.data, level: level) & ~0xFFF
    }

    /// `state` with the word at host address `address` replaced.
    static func patched(_ state: MachineState, _ address: UInt64, _ value: UInt64) -> MachineState {
      var state = state
      state.memory[address] = value
      return state
    }

    /// The host address of the nested leaf mapping guest-physical `gpa`.
    static func nestedLeaf(_ state: MachineState, _ gpa: UInt64) -> UInt64 {
      Scenario.nestedEntry(gpa, level: 1, in: state.memory)
    }

    static func exposure(_ bug: InjectedBug) -> Exposure {
      let data = Layout.data
      switch bug {
      case .xdNotInherited:
        // XD in the PDE only: a supervisor fetch must fault (P | I/D).
        let s = scenario()
        let pde = s.host(s.entry(data, level: 2))
        let state = patched(s.state, pde, s.state.memory[pde] | EntryBits.executeDisable)
        return Exposure(
          mode: .nested, state: state,
          operations: [.access(linearAddress: data, Access(.fetch))],
          correctLast: pageFault(0x11, data))

      case .writeProtectIgnored:
        let s = scenario(leaf: Bits.userReadOnly | EntryBits.dirty)
        return Exposure(
          mode: .nested, state: s.state, operations: [write(data)],
          correctLast: pageFault(0x3, data))

      case .accessedNotSetOnSuccess:
        // Upper entries start without A. After one walk they have it, so when the EPT makes
        // the guest's PML4 read-only no A write is needed any more.
        let s = scenario()
        let pml4 = nestedLeaf(s.state, s.guest.root)
        return Exposure(
          mode: .nested, state: s.state,
          operations: [
            read(data),
            .writeHost(hostPhysical: pml4, value: s.host(s.guest.root) | Bits.eptReadOnly),
            read(data),
          ],
          correctLast: translated(s.host(Layout.dataFrame)))

      case .dirtySetOnFaultingWrite:
        // A supervisor write to a clean read-only page faults; once CR0.WP is clear the same
        // write succeeds and must set D, which needs EPT write access to the page table.
        let s = scenario(leaf: Bits.userReadOnly)
        let table = tablePage(s, level: 1)
        return Exposure(
          mode: .nested, state: s.state,
          operations: [
            write(data), .writeRegister(.cr0, value: s.cr0 & ~wp),
            .writeHost(
              hostPhysical: nestedLeaf(s.state, table), value: s.host(table) | Bits.eptReadOnly),
            write(data),
          ],
          correctLast: .outcome(
            .eptViolation(
              qualification: 0x8A, guestPhysical: s.entry(data, level: 1), guestLinear: data)))

      case .protectionKeyBitDropped:
        // Key 1 access-disabled, and a user write to a read-only page: both deny.
        var s = scenario(leaf: Bits.userReadOnly | EntryBits.dirty | key1)
        s.cr4 |= pke
        s.pkru = 0b0100
        return Exposure(
          mode: .nested, state: s.state, operations: [write(data, user: true)],
          correctLast: pageFault(0x27, data))

      case .smapRescuesImplicitAccess:
        var s = scenario()
        s.cr4 |= smap
        s.rflags |= ac
        return Exposure(
          mode: .nested, state: s.state,
          operations: [.access(linearAddress: data, Access(.read, implicit: true))],
          correctLast: pageFault(0x1, data))

      case .nonCanonicalAsPageFault:
        return Exposure(
          mode: .nested, state: scenario().state, operations: [read(0x8000_0000_0000)],
          correctLast: .outcome(.generalProtection))

      case .fetchBitWithoutSMEPOrNXE:
        var s = scenario()
        s.efer = 0x500  // LME, LMA; no NXE
        return Exposure(
          mode: .nested, state: s.state,
          operations: [.access(linearAddress: Layout.other, Access(.fetch))],
          correctLast: pageFault(0, Layout.other))

      case .amdBit8NotReserved:
        var s = scenario(.none)
        s.vendor = .amd
        let pml4e = s.entry(data, level: 4)
        let state = patched(s.state, pml4e, s.state.memory[pml4e] | EntryBits.global)
        return Exposure(
          mode: .nested, state: state, operations: [read(data)],
          correctLast: pageFault(0x9, data))

      case .largePageOffsetTruncated:
        var s = scenario()
        s.map(0x8000_0000, to: 0x4000_0000, bits: Bits.userData, level: 2)
        return Exposure(
          mode: .nested, state: s.state, operations: [read(0x8000_5008)],
          correctLast: translated(s.host(0x4000_5008)))

      case .finalTranslationBeforeGuestFault:
        // A user read of a supervisor page whose frame the EPT does not map: the guest #PF
        // comes first.
        var s = Scenario(.ept)
        s.map(data, to: Layout.dataFrame, bits: Bits.kernelData)
        s.nestedBits[Layout.dataFrame] = 0
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data, user: true)],
          correctLast: pageFault(0x5, data))

      case .eptTableReadsNotWrites:
        // EPT A/D on and the guest page table read-only in the EPT: reading it is a write.
        var s = scenario()
        s.eptAccessedDirty = true
        let table = tablePage(s, level: 1)
        s.nestedBits[table] = Bits.eptReadOnly
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data)],
          correctLast: .outcome(
            .eptViolation(
              qualification: 0x8B, guestPhysical: s.entry(data, level: 1), guestLinear: data)))

      case .eptQualificationBitsReordered:
        // A write to a read-only EPT page: bits 1 (write), 3 (R), 7, 8.
        var s = scenario()
        s.nestedBits[Layout.dataFrame] = Bits.eptReadOnly
        return Exposure(
          mode: .nested, state: s.state, operations: [write(data, user: true)],
          correctLast: .outcome(
            .eptViolation(qualification: 0x18A, guestPhysical: Layout.dataFrame, guestLinear: data))
        )

      case .eptMisconfigurationAsViolation:
        var s = scenario()
        s.nestedBits[Layout.dataFrame] = EntryBits.eptWrite | EntryBits.eptWriteBack
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data)],
          correctLast: .outcome(.eptMisconfiguration(guestPhysical: Layout.dataFrame)))

      case .inveptKeepsCombinedMappings:
        let s = scenario()
        guard case .ept(let ept) = s.state.nested else { preconditionFailure("an EPT scenario") }
        return Exposure(
          mode: .nested, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), .writeHost(hostPhysical: nestedLeaf(s.state, Layout.dataFrame), value: 0),
            .invept(.singleContext, eptp: ept.eptp), read(data),
          ],
          correctLast: .outcome(
            .eptViolation(qualification: 0x181, guestPhysical: Layout.dataFrame, guestLinear: data))
        )

      case .nptAccessesNotUser:
        var s = scenario(.npt)
        s.nestedBits[Layout.dataFrame] = EntryBits.present | EntryBits.writable
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data)],
          correctLast: .outcome(
            .nestedPageFault(exitInfo1: 0x1_0000_0005, exitInfo2: Layout.dataFrame)))

      case .nptFinalBitAlwaysSet:
        // The guest page table is not mapped: a fault on a guest-table access (bit 33).
        var s = scenario(.npt)
        let table = tablePage(s, level: 1)
        s.nestedBits[table] = 0
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data)],
          correctLast: .outcome(
            .nestedPageFault(exitInfo1: 0x2_0000_0006, exitInfo2: s.entry(data, level: 1))))

      case .nptTableReadsNotWrites:
        var s = scenario(.npt)
        let table = tablePage(s, level: 1)
        s.nestedBits[table] = EntryBits.present | EntryBits.user
        return Exposure(
          mode: .nested, state: s.state, operations: [read(data)],
          correctLast: .outcome(
            .nestedPageFault(exitInfo1: 0x2_0000_0007, exitInfo2: s.entry(data, level: 1))))

      case .invlpgKeepsEntry:
        let s = scenario()
        return Exposure(
          mode: .nested, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), remap(s, to: Layout.spareFrame), .invlpg(linearAddress: data), read(data),
          ],
          correctLast: translated(s.host(Layout.spareFrame)))

      case .pgeToggleKeepsGlobals:
        var s = scenario(leaf: Bits.userData | EntryBits.global)
        s.cr4 |= pge
        return Exposure(
          mode: .nested, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), remap(s, to: Layout.spareFrame), .writeRegister(.cr4, value: s.cr4 & ~pge),
            read(data),
          ],
          correctLast: translated(s.host(Layout.spareFrame)))

      case .pcidIgnoredInTag:
        // PCID 1 caches the page; a switch to PCID 2 without flushing must not see it.
        var s = scenario()
        s.cr4 |= pcide
        let root = s.guest.root
        let state = {
          var state = s.state
          state.guest.cr3 = root | 1
          return state
        }()
        return Exposure(
          mode: .nested, state: state, configuration: MMUConfiguration(),
          operations: [
            read(data), remap(s, to: Layout.spareFrame),
            .writeRegister(.cr3, value: noFlush | root | 2), read(data),
          ],
          correctLast: translated(s.host(Layout.spareFrame)))

      case .writeThroughCleanEntry:
        // A write through a cached clean entry must set D; the proof is that a later write
        // needs no A/D write even when the EPT makes the page table read-only.
        let s = scenario(leaf: EntryBits.directory | EntryBits.accessed)
        let table = tablePage(s, level: 1)
        return Exposure(
          mode: .nested, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), write(data),
            .writeHost(
              hostPhysical: nestedLeaf(s.state, table), value: s.host(table) | Bits.eptReadOnly),
            .invept(.allContexts, eptp: 0), write(data),
          ],
          correctLast: translated(s.host(Layout.dataFrame)))

      case .faultKeepsStaleEntry:
        // A read-only page is cached, then unmapped; the write the stale entry denies walks,
        // faults, and must take the stale entry with it.
        let s = scenario(leaf: Bits.userReadOnly | EntryBits.dirty)
        return Exposure(
          mode: .nested, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), .writeGuest(guestPhysical: s.entry(data, level: 1), value: 0),
            write(data, user: true), read(data),
          ],
          correctLast: pageFault(0, data))

      case .shadowRoleIgnoresWriteProtect:
        // With CR0.WP = 0 a supervisor write makes a writable kernel shadow entry; with
        // WP = 1 the same write must fault.
        var s = scenario(leaf: Bits.userReadOnly | EntryBits.dirty)
        s.cr0 &= ~wp
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [write(data), .writeRegister(.cr0, value: s.cr0 | wp), write(data)],
          correctLast: pageFault(0x3, data))

      case .staleWriteProtectInRole:
        let s = scenario(leaf: Bits.userReadOnly | EntryBits.dirty)
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [.writeRegister(.cr0, value: s.cr0 & ~wp), write(data)],
          correctLast: translated(s.host(Layout.dataFrame)))

      case .inheritedAccessFromParentOnly:
        // PML4 entries 0 and 1 share one PDPT; entry 1 is read-only. A page written through
        // entry 0 must not become writable through entry 1.
        var s = scenario()
        let alias = data + (1 << 39)
        s.map(data + 0x1000, to: Layout.spareFrame)
        let shared = s.guest.entry(of: data, level: 4)
        s.guest.setEntry(of: alias, level: 4, to: shared & ~EntryBits.writable)
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [
            write(data, user: true), read(alias + 0x1000, user: true), write(alias, user: true),
          ],
          correctLast: pageFault(0x7, alias))

      case .unsyncLinkedWithoutSync:
        // Page table T maps data (entry 2) and, at entry 5, a second page. T goes out of sync
        // when the guest remaps entry 2; then a not-present PDE is pointed at T. Through the
        // new PDE, entry 2 must show T's current contents: it was never visible before.
        var s = scenario()
        let second = data + 0x3000
        s.map(second, to: Layout.otherFrame)
        let newPDE = data + 0x20_0000
        let t = s.entry(data, level: 1)
        let pdeValue = s.guest.entry(of: data, level: 2)
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data),
            .writeGuest(guestPhysical: t, value: Layout.spareFrame | Bits.userData),
            .writeGuest(guestPhysical: s.entry(newPDE, level: 2), value: pdeValue),
            read(newPDE + 0x3000), read(newPDE),
          ],
          correctLast: translated(s.host(Layout.spareFrame)))

      case .writableShadowAliasOfPageTable:
        // The guest maps its own page directory; every write to it must trap.
        var s = scenario()
        let directory = tablePage(s, level: 2)
        s.map(Layout.code, to: directory, bits: Bits.userData)
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [read(data), write(Layout.code), write(Layout.code)],
          correctLast: translated(s.host(directory)))

      case .cleanPageMappedWritable:
        // A clean page read, then written: the write must reach the hypervisor, which sets
        // the guest's D. The proof: after the EPT makes the page table read-only, a write
        // needs no A/D write.
        let s = scenario(leaf: EntryBits.directory | EntryBits.accessed)
        let table = tablePage(s, level: 1)
        return Exposure(
          mode: .shadow, state: s.state, configuration: MMUConfiguration(),
          operations: [
            read(data), write(data),
            .writeHost(
              hostPhysical: nestedLeaf(s.state, table), value: s.host(table) | Bits.eptReadOnly),
            write(data),
          ],
          correctLast: translated(s.host(Layout.dataFrame)))

      case .paravirtualWritableTableMapping:
        let s = scenario(.none)
        let table = tablePage(s, level: 1)
        return Exposure(
          mode: .paravirtual, state: s.state, configuration: MMUConfiguration(),
          operations: [
            .paravirtualBatch([
              PageTableUpdate(entry: s.entry(data + 0x1000, level: 1), value: table | 0x7)
            ])
          ],
          correctLast: .batch(status: -22, applied: 0))

      case .paravirtualBatchContinuesAfterFailure:
        let s = scenario(.none)
        let table = tablePage(s, level: 1)
        return Exposure(
          mode: .paravirtual, state: s.state, configuration: MMUConfiguration(),
          operations: [
            .paravirtualBatch([
              PageTableUpdate(entry: s.entry(data + 0x1000, level: 1), value: table | 0x7),
              PageTableUpdate(
                entry: s.entry(data + 0x2000, level: 1), value: Layout.spareFrame | 0x7),
            ])
          ],
          correctLast: .batch(status: -22, applied: 0))
      }
    }

    /// A guest write pointing `Layout.data`'s leaf at `frame`, with no flush.
    static func remap(_ scenario: Scenario, to frame: UInt64) -> TraceOperation {
      let bits = scenario.guest.entry(of: Layout.data, level: 1) & ~TableBuilder.addressMask
      return .writeGuest(guestPhysical: scenario.entry(Layout.data, level: 1), value: frame | bits)
    }

    static func observe(_ exposure: Exposure, bugs: Set<InjectedBug>) throws -> [TraceObservation] {
      var configuration = exposure.configuration
      configuration.injectedBugs = bugs
      let mmu = try makeMMU(exposure.mode, state: exposure.state, configuration: configuration)
      return exposure.operations.map { mmu.apply($0) }
    }

    @Test(arguments: InjectedBug.allCases)
    func theBugChangesWhatTheTraceObserves(bug: InjectedBug) throws {
      let exposure = Self.exposure(bug)
      let correct = try Self.observe(exposure, bugs: [])
      let buggy = try Self.observe(exposure, bugs: [bug])
      #expect(correct != buggy, "\(bug): \(bug.summary)")
    }

    @Test(arguments: InjectedBug.allCases)
    func theCorrectMMUObservesWhatTheArchitectureSays(bug: InjectedBug) throws {
      let exposure = Self.exposure(bug)
      let correct = try Self.observe(exposure, bugs: [])
      #expect(correct.last?.result == exposure.correctLast, "\(bug)")
    }

    @Test(arguments: InjectedBug.allCases)
    func eachBugIsExposedInAModeItSaysItAffects(bug: InjectedBug) {
      #expect(bug.modes.contains(Self.exposure(bug).mode))
      #expect(!bug.summary.isEmpty)
    }

    @Test func theCatalogueHasAtLeastTwentyBugsOverEveryMode() {
      #expect(InjectedBug.allCases.count >= 20)
      for mode in MMUMode.allCases {
        #expect(InjectedBug.allCases.contains { $0.modes.contains(mode) }, "\(mode)")
      }
    }

    @Test func noBugIsInjectedByDefault() {
      #expect(MMUConfiguration().injectedBugs.isEmpty)
      #expect(MMUConfiguration.uncached.injectedBugs.isEmpty)
    }

    /// Every other bug leaves each trace alone: the traces single out the bug they are for
    /// (they may share an effect, but the catalogue's branches do not fire by accident).
    @Test func aBugThatDoesNotApplyToATraceLeavesItAlone() throws {
      let exposure = Self.exposure(.xdNotInherited)
      let unrelated = Set(InjectedBug.allCases).subtracting([
        .xdNotInherited, .fetchBitWithoutSMEPOrNXE,
      ])
      #expect(try Self.observe(exposure, bugs: unrelated) == Self.observe(exposure, bugs: []))
    }
  }
#endif
