import Machine
import Workloads

/// The shadow-structure probes (``OperationClass/aliasRevisit``,
/// ``OperationClass/writeProtectWindow``): guest behaviour whose observable result depends on
/// how a shadow MMU keys and syncs its shadow pages (SEMANTICS §5.1, §5.4, §5.9). Drawn only by
/// the ``OperationMix/Focus/shadowStructure`` focus, so the other mixes' episodes are unchanged.
extension TraceGenerator {
  /// An access; perhaps a store into the entry that mapped it; a second entry in one of the
  /// tables on its path made to name the same table below (an alias), perhaps without the
  /// right the access needs; a read through the alias of a neighbouring page, so that the
  /// alias's path is walked and linked; the first access again, through the alias.
  ///
  /// The shapes of KVM b1bd5cba (a table shared by paths of different rights must not share
  /// one shadow page: the shadow role ANDs the rights of every level) and 65855ed8 (an unsync
  /// shadow page linked under a new entry must be synced first). The alias goes into an empty
  /// slot when one is found, in the same half of the root at the top level, so that the alias
  /// address stays canonical.
  mutating func aliasRevisit() -> TraceOperation? {
    guard view.guestLevels > 0 else { return nil }
    let kind: AccessKind = pick([.write, .write, .read, .read, .fetch])
    let user = chance(50)
    let access = Access(kind, user: user, implicit: false)
    let address = linear()
    let path = view.guestPath(address)
    guard let leaf = path.last, leaf.value & 1 != 0, LayoutView.isLeaf(leaf.value, leaf.level)
    else { return nil }
    let tables = path.filter { $0.level > leaf.level }
    guard !tables.isEmpty else { return nil }
    let named = pick(tables)
    let shift = UInt64(12 + 9 * (named.level - 1))
    let index = address >> shift & 0x1FF
    let table = named.hostPhysical & ~0xFFF
    var aliasIndex = index
    for _ in 0..<8 {
      let candidate = UInt64.random(in: 0..<512, using: &random)
      let slot = named.level == view.guestLevels ? index & 0x100 | candidate & 0xFF : candidate
      guard slot != index else { continue }
      aliasIndex = slot
      if view.read(table | slot << 3) & 1 == 0 { break }
    }
    guard aliasIndex != index else { return nil }
    func aliased(_ linear: UInt64) -> UInt64 {
      canonical(linear & ~(0x1FF << shift) | aliasIndex << shift)
    }

    var middle: [TraceOperation] = []
    // A changed leaf: under shadow paging its table goes out of sync (a level-1 table) or the
    // change is emulated, before the alias links the table again.
    if chance(40) {
      let value = mutateGuest(leaf)
      view.write(leaf.hostPhysical, value)
      middle.append(guestStore(leaf.guestPhysical, value))
    }
    // The alias: the entry copied, perhaps without the right the access needs.
    var value = named.value
    var removable: [UInt64] = []
    if kind == .write { removable.append(EntryBits.writable) }
    if user { removable.append(EntryBits.user) }
    if kind == .fetch && registers.efer >> 11 & 1 == 1 {
      removable.append(EntryBits.executeDisable)
    }
    var userRemoved = false
    if !removable.isEmpty && chance(60) {
      let bit = pick(removable)
      value = bit == EntryBits.executeDisable ? value | bit : value & ~bit
      userRemoved = bit == EntryBits.user
    }
    let aliasEntry = table | aliasIndex << 3
    originals[aliasEntry] = originals[aliasEntry] ?? view.read(aliasEntry)
    view.write(aliasEntry, value)
    middle.append(guestStore(named.guestPhysical & ~0xFFF | aliasIndex << 3, value))
    // A neighbour in the leaf's table, read through the alias.
    let leafShift = UInt64(12 + 9 * (leaf.level - 1))
    let leafIndex = address >> leafShift & 0x1FF
    let leafTable = leaf.hostPhysical & ~0xFFF
    let present = (UInt64(0)..<512).filter {
      $0 != leafIndex && view.read(leafTable | $0 << 3) & 1 != 0
    }
    let neighbourIndex = present.isEmpty ? leafIndex ^ 1 : pick(present)
    let neighbour = aliased(address & ~(0x1FF << leafShift) | neighbourIndex << leafShift)
    middle.append(
      .access(linearAddress: neighbour, Access(.read, user: user && !userRemoved, implicit: false)))
    let alias = aliased(address)
    touched += [address, alias]
    if touched.count > 6 { touched.removeFirst(touched.count - 6) }
    pending += middle + [.access(linearAddress: alias, access)]
    return .access(linearAddress: address, access)
  }

  /// A supervisor write with CR0.WP clear, then WP set and the same write again: what a kernel
  /// patching read-only memory does, and what a shadow page role without WP gets wrong (KVM
  /// `role.cr0_wp`, SEMANTICS §5.1). The address is most often one the guest maps read-only.
  mutating func writeProtectWindow() -> TraceOperation? {
    guard view.guestLevels > 0 else { return nil }
    let readOnly = (machine.addresses + touched).filter(isReadOnlyPage)
    let address = !readOnly.isEmpty && chance(70) ? pick(readOnly) : linear()
    let write = TraceOperation.access(
      linearAddress: address, Access(.write, user: false, implicit: false))
    var operations: [TraceOperation] = []
    if registers.cr0 & Self.cr0WriteProtect != 0 {
      registers.cr0 &= ~Self.cr0WriteProtect
      operations.append(.writeRegister(.cr0, value: registers.cr0))
    }
    registers.cr0 |= Self.cr0WriteProtect
    operations += [write, .writeRegister(.cr0, value: registers.cr0), write]
    pending += operations.dropFirst()
    return operations[0]
  }

  /// CR0.WP.
  private static let cr0WriteProtect: UInt64 = 1 << 16

  /// Whether the guest's tables map `linear` to a page through an entry with R/W = 0.
  private func isReadOnlyPage(_ linear: UInt64) -> Bool {
    let path = view.guestPath(linear)
    guard let leaf = path.last, leaf.value & 1 != 0, LayoutView.isLeaf(leaf.value, leaf.level)
    else { return false }
    return path.contains { $0.value & EntryBits.writable == 0 }
  }

  /// A guest store into one of its paging entries: a plain store, or a one-update batch for a
  /// paravirtual guest.
  private func guestStore(_ entry: UInt64, _ value: UInt64) -> TraceOperation {
    mode == .paravirtual
      ? .paravirtualBatch([PageTableUpdate(entry: entry, value: value)])
      : .writeGuest(guestPhysical: entry, value: value)
  }
}
