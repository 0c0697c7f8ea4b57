import Machine
import Prover

/// The proof a campaign runs every N operations (`nestcheck fuzz --prove-every N`, issue 5
/// item 5): the prover's soundness (I1–I3) and page-table protection (I5) of SEMANTICS §5.5 on
/// the target's exported shadow state.
public enum ShadowProof {
  /// Why the exported `state` fails the proof, or `nil` when both properties are proved or
  /// there is nothing to prove: no shadow, or guest paging off (the shadow then maps
  /// guest-physical addresses, which the shadow properties do not speak of). An unknown or
  /// skipped verdict is a failure too: a proof that did not finish never passes.
  public static func check(_ state: MachineState) -> String? {
    guard state.shadow != nil, state.guest.cr0 & 1 << 31 != 0 else { return nil }
    var options = ProverOptions()
    options.properties = [.soundness, .pageTableProtection]
    options.jobs = 1
    options.timeoutMilliseconds = 20_000
    do {
      for result in try prove(state, options: options).results {
        switch result.verdict {
        case .proved:
          continue
        case .violated(let counterexample):
          return "\(result.property.rawValue) violated: \(counterexample)"
        case .unknown(let reason), .skipped(let reason):
          return "\(result.property.rawValue) undecided: \(reason)"
        }
      }
      return nil
    } catch {
      return "the prover could not judge the state: \(error)"
    }
  }
}
