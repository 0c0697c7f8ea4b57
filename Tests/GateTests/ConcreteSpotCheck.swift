import Machine
import ReferenceModel

@testable import Gate

/// A concrete spot check of a built spec's properties at sample addresses, with the reference
/// model: not a proof (it looks only at the pages the spec names), but a violation it finds is
/// real. The spec library's tests use it to confirm that every negative spec is violated where
/// it says and that positive specs show no violation at their own pages.
struct ConcreteSpotCheck {
  let built: BuiltSpec
  /// Guest plus host: the composition.
  let composition: ConcreteModel
  /// The hardware's walk of the shadow tables, when the spec has a raw shadow.
  let shadow: ConcreteModel?

  static let accesses: [Access] = [AccessKind.read, .write, .fetch].flatMap { kind in
    [Access(kind), Access(kind, user: true)]
  }

  init(_ built: BuiltSpec) throws {
    self.built = built
    let state = built.state
    composition = try ConcreteModel(state)
    if let paging = state.shadow {
      let hostBits: Int =
        switch state.nested {
        case .none: state.processor.physicalAddressBits
        case .ept(let ept): ept.physicalAddressBits
        case .npt(let npt): npt.physicalAddressBits
        }
      let hardware = MachineState(
        processor: Processor(
          vendor: state.processor.vendor, physicalAddressBits: hostBits, gigabytePages: true),
        guest: GuestRegisters(
          cr0: paging.cr0, cr3: paging.cr3, cr4: paging.cr4, efer: paging.efer,
          rflags: state.guest.rflags, pkru: state.guest.pkru, pkrs: state.guest.pkrs),
        memory: state.memory)
      shadow = try ConcreteModel(hardware)
    } else {
      shadow = nil
    }
  }

  /// The first and last byte of the first and last eight pages of every guest and shadow
  /// mapping, and of every page a raw entry names.
  var samples: [UInt64] {
    var ranges = built.spec.guestMappings.map { ($0.gva, $0.size, $0.page.rawValue) }
    if case .raw(let raw) = built.spec.shadow {
      ranges += raw.mappings.map { ($0.gva, $0.size, $0.page.rawValue) }
    }
    var addresses: [UInt64] = []
    for (base, size, page) in ranges {
      let pages = size / page
      let head = min(pages, 8)
      let tail = pages > 16 ? pages - 8 : head
      for index in Array(0..<head) + Array(tail..<pages) {
        let start = base + index * page
        addresses += [start, start + (page - 1)]
      }
    }
    for entry in built.spec.rawEntries where entry.table != .nested {
      addresses.append(entry.address)
    }
    return addresses
  }

  /// The properties found violated at the samples, among those this check understands.
  func violations() -> Set<Property> {
    var found: Set<Property> = []
    let state = built.state
    let tableFrames = Set(
      built.layout.guestTables.filter {
        !(state.shadow?.unsyncTables.contains($0.guestPhysical >> 12) ?? false)
      }.map(\.hostPhysical))
    let inRanges = { (address: UInt64) in state.hostRanges.contains { $0.contains(address) } }
    for gva in samples {
      var shadowWrites = false
      var shadowPresent = false
      for access in Self.accesses {
        let reference = composition.translate(gva, access).outcome
        if case .translated(let hpa) = reference, !inRanges(hpa) { found.insert(.isolation) }
        guard let shadow, case .translated(let hpa) = shadow.translate(gva, access).outcome
        else { continue }
        shadowPresent = true
        if !inRanges(hpa) { found.insert(.isolation) }
        if reference != .translated(hostPhysical: hpa) { found.insert(.soundness) }
        if access.kind == .write {
          shadowWrites = true
          if tableFrames.contains(hpa & ~0xFFF) { found.insert(.pageTableProtection) }
        }
      }
      guard shadowPresent else { continue }
      // I4: every guest entry on the path has A; a writable shadow needs the leaf's D.
      let walk = composition.translate(gva, Access(.read), recording: true)
      let guestEntries = walk.references.filter { $0.stage == .guest }
      if guestEntries.contains(where: { $0.value & (1 << 5) == 0 }) {
        found.insert(.accessedDirty)
      }
      if shadowWrites, let leaf = guestEntries.last, leaf.value & (1 << 6) == 0 {
        found.insert(.accessedDirty)
      }
    }
    return found
  }

  /// The properties this check can judge: the others (fault classification, entry lemmas)
  /// need the prover.
  static let judged: Set<Property> = [.soundness, .accessedDirty, .pageTableProtection, .isolation]
}
