import FastMMU
import Machine

/// The fast MMU of issue 4 as the gate's ``ShadowBuilder``: `makeMMU` in the recipe's mode over
/// the spec's state, the recipe's operations applied in order, and the MMU's snapshot as the
/// state the properties are checked on, with the spec's host ranges copied in (the fast MMU
/// knows nothing of them).
///
/// Shadow mode exports its shadow tables, root and unsync tables (SEMANTICS §5.1). Paravirtual
/// mode (§5.8) has no shadow of its own: the guest's tables hold machine frames and are the
/// tables the hardware walks. Its snapshot is checked with those tables in both roles — the
/// guest's (with no nested stage: the frames they hold are machine frames) and the hardware's
/// (with the guest's own control registers, which a PV guest runs under). Soundness then holds
/// by construction; page-table protection is Xen's rule that no page-table frame is mapped
/// writable, and isolation that every frame mapped is the domain's.
public struct FastMMUShadowBuilder: ShadowBuilder {
  /// Makes the builder.
  public init() {}

  /// Builds the shadow of `recipe` from `state`.
  public func buildShadow(
    _ recipe: ShadowRecipe, from state: MachineState, context: CheckContext
  ) -> ShadowBuildResult {
    guard recipe.mode != .nested else {
      return .notBuilt(
        EngineOutcome(.error, "the nested mode keeps no shadow tables to export"))
    }
    var configuration = MMUConfiguration()
    if let policy = recipe.writePolicy { configuration.shadowWritePolicy = policy }
    let mmu: any VirtualMMU
    do {
      mmu = try makeMMU(recipe.mode, state: state, configuration: configuration)
    } catch {
      return .notBuilt(
        EngineOutcome(
          .error, "the fast MMU (\(recipe.mode) mode) refuses the spec's state: \(error)"))
    }
    for (index, operation) in recipe.operations.enumerated() {
      if let deadline = context.deadline, ContinuousClock.now >= deadline {
        return .notBuilt(
          EngineOutcome(
            .undecided,
            "the run's time budget ran out at shadow.operations[\(index)] of "
              + "\(recipe.operations.count)"))
      }
      _ = mmu.apply(operation)
    }
    var built = mmu.snapshot()
    built.hostRanges = state.hostRanges
    if recipe.mode == .paravirtual && built.shadow == nil {
      built.shadow = ShadowPaging(
        cr3: built.guest.cr3, guest: built.guest, cr0: built.guest.cr0, cr4: built.guest.cr4,
        efer: built.guest.efer)
    }
    return .built(built)
  }
}
