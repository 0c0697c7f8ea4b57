import FastMMU
import Machine
import ReferenceModel
import Testing
import Workloads

@testable import Oracle

/// The example adapter, written separately from the fast MMU, agrees with it: on random
/// machines of every paging shape and random traces of every operation, the library, the
/// process and the fast MMU with every cache off (so that it, too, walks afresh every time)
/// observe exactly the same thing. A disagreement is a bug in one of the two.
@Suite(.enabled(if: AdapterBuild.compilerAvailable, "no C compiler to build the example adapter"))
struct AdapterAgreementTests {
  /// A random trace over `machine`: accesses to its interesting addresses, guest stores into
  /// its tables, host stores flipping bits anywhere in its memory, register writes, flushes
  /// and batches.
  static func trace(_ machine: RandomMachine, seed: UInt64, length: Int) -> [TraceOperation] {
    var random = SeededGenerator(seed: seed)
    func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
    let words = machine.state.memory.words.keys.sorted()
    let bits: [UInt64] = [0, 1, 2, 5, 6, 7, 8, 10, 59, 63].map { 1 << $0 }
    var operations: [TraceOperation] = []
    for _ in 0..<length {
      switch Int.random(in: 0..<100, using: &random) {
      case 0..<55:
        let kind = pick(AccessKind.allCases)
        let mode = Int.random(in: 0..<3, using: &random)
        operations.append(
          .access(
            linearAddress: pick(machine.addresses),
            Access(kind, user: mode == 0, implicit: mode == 2 && kind != .fetch)))
      case 55..<65 where !machine.guestTables.isEmpty:
        let table = pick(machine.guestTables)
        let slot = table | UInt64.random(in: 0..<512, using: &random) << 3
        operations.append(
          .writeGuest(guestPhysical: slot, value: pick([0, 0x1007, 0x4000_0007]) ^ pick(bits)))
      case 65..<75 where !words.isEmpty:
        let address = pick(words)
        operations.append(
          .writeHost(
            hostPhysical: address, value: machine.state.memory[address] ^ pick(bits)))
      case 75..<85:
        let guest = machine.state.guest
        operations.append(
          pick([
            .writeRegister(.cr0, value: guest.cr0 ^ 1 << 16),
            .writeRegister(.cr4, value: guest.cr4 ^ pick([1 << 20, 1 << 21, 1 << 22, 1 << 7])),
            .writeRegister(.efer, value: guest.efer ^ 1 << 11),
            .writeRegister(.rflags, value: guest.rflags ^ 1 << 18),
            .writeRegister(.pkru, value: UInt64.random(in: 0...0x1_0000_0000, using: &random)),
            .writeRegister(.cr3, value: guest.cr3 | pick([0, 1 << 63])),
            .writeRegister(.cr0, value: guest.cr0 & ~(1 << 5)),
            .writeRegister(.vpid, value: pick([0, 1, 2, 0x1_0000])),
          ]))
      case 85..<95:
        operations.append(
          pick([
            .invlpg(linearAddress: pick(machine.addresses)),
            .invpcid(pick(InvpcidType.allCases), pcid: pick([0, 1, 0x1000]), linearAddress: 0),
            .invpcid(.individualAddress, pcid: 0, linearAddress: pick(machine.addresses)),
            .invept(pick(InveptType.allCases), eptp: pick([0, Self.nestedRoot(machine.state)])),
            .invvpid(
              pick(InvvpidType.allCases), vpid: pick([0, 1]),
              linearAddress: pick(machine.addresses)),
          ]))
      default:
        let entry = machine.guestTables.isEmpty ? 0x1000 : pick(machine.guestTables)
        operations.append(
          .paravirtualBatch([
            PageTableUpdate(entry: entry | 8, value: 0x1007, preserveAccessedDirty: true),
            PageTableUpdate(entry: pick([entry | 16, 0x7_0000_0000]), value: 0),
          ]))
      }
    }
    return operations
  }

  static func nestedRoot(_ state: MachineState) -> UInt64 {
    switch state.nested {
    case .none: 0
    case .ept(let ept): ept.eptp
    case .npt(let npt): npt.nCR3
    }
  }

  @Test(arguments: PagingShape.all)
  func theLibraryAgreesWithTheFastMMUWithoutCaches(shape: PagingShape) throws {
    let library = try LibraryTarget(path: try AdapterBuild.built().libraryAdapter)
    var compared = 0
    for seed in UInt64(1)...40 {
      let machine = RandomMachine(shape: shape, seed: seed &* 7919 &+ UInt64(shape.guestLevels))
      guard let mmu = try? NestedMMU(machine.state, configuration: .uncached) else { continue }
      try library.reset(to: machine.state)
      for operation in Self.trace(machine, seed: seed, length: 200) {
        let expected = mmu.apply(operation)
        let observed = try library.apply(operation)
        #expect(observed == expected, "\(shape), seed \(seed), \(operation.json.text())")
        if observed != expected { return }
        compared += 1
      }
    }
    #expect(compared > 1000)
  }

  /// After a trace, the machine the example exports (through either path) is the one the fast
  /// MMU holds: the same memory, accessed and dirty flags included, and the same registers.
  @Test(arguments: [
    PagingShape(guestLevels: 4, nested: .ept(levels: 4)),
    PagingShape(guestLevels: 5, nested: .npt(levels: 5)),
    PagingShape(guestLevels: 0, nested: .ept(levels: 4)),
  ])
  func theExportedStateIsTheFastMMUs(shape: PagingShape) throws {
    let products = try AdapterBuild.built()
    let library = try LibraryTarget(path: products.libraryAdapter)
    let process = ProcessTarget(executable: products.processAdapter)
    for seed in UInt64(1)...5 {
      let machine = RandomMachine(shape: shape, seed: seed)
      let mmu = try NestedMMU(machine.state, configuration: .uncached)
      try library.reset(to: machine.state)
      try process.reset(to: machine.state)
      let trace = Self.trace(machine, seed: seed, length: 100)
      for operation in trace { _ = mmu.apply(operation) }
      #expect(library.applyAll(trace).error == nil)
      #expect(process.applyAll(trace).error == nil)
      let expected = mmu.snapshot()
      for exported in [library.exportState(), process.exportState()] {
        #expect(exported?.memory == expected.memory, "\(shape), seed \(seed)")
        #expect(exported?.guest == expected.guest)
        #expect(exported?.nested == expected.nested)
      }
    }
  }

  /// On accesses alone, the example also agrees with the reference model's concrete
  /// interpretation making KVM's choices (SEMANTICS §8), accessed/dirty writes included.
  @Test(arguments: PagingShape.all)
  func theLibraryAgreesWithTheReferenceModelOnAccesses(shape: PagingShape) throws {
    let library = try LibraryTarget(path: try AdapterBuild.built().libraryAdapter)
    var compared = 0
    for seed in UInt64(1)...40 {
      let machine = RandomMachine(shape: shape, seed: seed &* 104_729)
      guard var model = try? ConcreteModel(machine.state) else { continue }
      try library.reset(to: machine.state)
      let accesses = Self.trace(machine, seed: seed, length: 300).filter {
        if case .access = $0 { return true } else { return false }
      }
      for case .access(let address, let access) in accesses {
        let expected = model.perform(address, access)
        let observed = try library.apply(.access(linearAddress: address, access)).result
        #expect(observed == .outcome(expected), "\(shape), seed \(seed), \(address) \(access)")
        if observed != .outcome(expected) { return }
        compared += 1
      }
    }
    #expect(compared > 1000)
  }

  @Test(arguments: [
    PagingShape(guestLevels: 4, nested: .ept(levels: 4)),
    PagingShape(guestLevels: 5, nested: .npt(levels: 4)),
  ])
  func theProcessAgreesWithTheLibrary(shape: PagingShape) throws {
    let products = try AdapterBuild.built()
    let library = try LibraryTarget(path: products.libraryAdapter)
    let process = ProcessTarget(executable: products.processAdapter)
    for seed in UInt64(1)...10 {
      let machine = RandomMachine(shape: shape, seed: seed)
      try library.reset(to: machine.state)
      try process.reset(to: machine.state)
      for operation in Self.trace(machine, seed: seed, length: 100) {
        #expect(
          try process.apply(operation) == library.apply(operation), "\(operation.json.text())")
      }
    }
  }
}
