import Machine

/// Stores into guest memory under nested and shadow paging (the trace vocabulary's
/// `write-guest` and `paravirtual-batch`; paravirtualization has its own, ParavirtualDomain).
///
/// A guest store names a guest-physical address and goes through a mapping the guest is
/// entitled to: it lands where the nested tables map the address now, whatever their rights,
/// and is refused when no present, well-formed leaf maps it. Nothing is flushed (§6.1: the
/// guest flushes itself). A batch under nested or shadow paging is the same stores in order,
/// stopping at the first refused one with `-EINVAL` and the number applied.
extension Oracle {
  func writeGuest(_ gpa: UInt64, _ value: UInt64) -> TraceResult {
    if mode == .paravirtual { return paravirtualStore(gpa, value) }
    guard let hpa = backing(gpa) else { return .refused(.unbackedGuestPhysical) }
    store(hpa, value)
    return .completed
  }

  func batch(_ updates: [PageTableUpdate]) -> TraceResult {
    if mode == .paravirtual { return paravirtualBatch(updates) }
    for (index, update) in updates.enumerated() {
      guard let hpa = backing(update.entry, batchIndex: index) else {
        return .batch(status: TraceResult.invalidStatus, applied: index)
      }
      var value = update.value
      var unknown: UInt64 = 0
      if update.preserveAccessedDirty {
        value |= model.state.memory[hpa] & EntryMasks.accessedDirty
        unknown = uncertain[hpa] & EntryMasks.accessedDirty
      }
      store(hpa, value)
      uncertain.add(hpa, unknown & ~value)
    }
    return .batch(status: 0, applied: updates.count)
  }
}
