import Machine
import ReferenceModel

/// One of the architecture's allowed choices (SEMANTICS §8), as `--all-choices` names it.
struct ChoiceKnob {
  /// The name in output: the ``Choices`` property's name.
  var name: String
  var keyPath: WritableKeyPath<Choices<Concrete>, Bool>

  /// Every knob, in the order of ``Choices``.
  static var all: [ChoiceKnob] {
    [
      ChoiceKnob(name: "accessedOnFault", keyPath: \.accessedOnFault),
      ChoiceKnob(name: "accessedDirtyBeforeFinal", keyPath: \.accessedDirtyBeforeFinal),
      ChoiceKnob(name: "readBitOnAccessedDirtyWrite", keyPath: \.readBitOnAccessedDirtyWrite),
      ChoiceKnob(name: "nestedDirtyOnTableRead", keyPath: \.nestedDirtyOnTableRead),
      ChoiceKnob(name: "advancedQualification", keyPath: \.advancedQualification),
    ]
  }

  /// The choices as JSON: each knob's name and value.
  static func json(_ choices: Choices<Concrete>) -> JSON {
    .object(all.map { (key: $0.name, value: .bool(choices[keyPath: $0.keyPath])) })
  }
}

/// One outcome the architecture allows for an access, and the choices that give it.
struct AllowedOutcome {
  /// The outcome.
  var outcome: Outcome
  /// The translation under the first combination that gives it.
  var translation: Translation<Concrete>
  /// Every combination that gives it, in the order of ``Choices/all``.
  var choices: [Choices<Concrete>]
  /// The same set, compactly: each condition a partial assignment of knobs, the set being the
  /// union of the conditions. An empty condition means "whatever the choices".
  var conditions: [[(knob: String, value: Bool)]]

  /// Evaluates the access under every combination of ``Choices/all`` and groups the
  /// combinations by the outcome they give, in order of first appearance.
  static func evaluate(_ model: ConcreteModel, _ linear: UInt64, _ access: Access)
    -> [AllowedOutcome]
  {
    let combinations = Choices<Concrete>.all
    let results = combinations.map { model.translate(linear, access, choices: $0) }
    let knobs = ChoiceKnob.all
    // A knob matters when flipping it alone changes the outcome for some combination.
    let relevant = knobs.filter { knob in
      combinations.indices.contains { i in
        var flipped = combinations[i]
        flipped[keyPath: knob.keyPath].toggle()
        return model.translate(linear, access, choices: flipped).outcome != results[i].outcome
      }
    }
    var groups: [AllowedOutcome] = []
    for (choices, result) in zip(combinations, results) {
      if let i = groups.firstIndex(where: { $0.outcome == result.outcome }) {
        groups[i].choices.append(choices)
      } else {
        groups.append(
          AllowedOutcome(
            outcome: result.outcome, translation: result, choices: [choices], conditions: []))
      }
    }
    for i in groups.indices {
      groups[i].conditions = conditions(of: groups[i].choices, over: relevant)
    }
    return groups
  }

  /// A compact description of a set of combinations over the knobs that matter: one condition
  /// when the set is all combinations agreeing on some knobs, else one per distinct assignment.
  private static func conditions(of set: [Choices<Concrete>], over knobs: [ChoiceKnob])
    -> [[(knob: String, value: Bool)]]
  {
    let assignments = Array(Set(set.map { c in knobs.map { c[keyPath: $0.keyPath] } })).sorted {
      $0.lexicographicallyPrecedes($1) { !$0 && $1 }
    }
    let fixed = knobs.indices.filter { k in Set(assignments.map { $0[k] }).count == 1 }
    if assignments.count == 1 << (knobs.count - fixed.count), let first = assignments.first {
      return [fixed.map { (knobs[$0].name, first[$0]) }]
    }
    return assignments.map { values in knobs.indices.map { (knobs[$0].name, values[$0]) } }
  }

  /// `when accessedDirtyBeforeFinal = true, readBitOnAccessedDirtyWrite = false`, or
  /// `whatever the choices`.
  static func text(_ condition: [(knob: String, value: Bool)]) -> String {
    condition.isEmpty
      ? "whatever the choices"
      : "when " + condition.map { "\($0.knob) = \($0.value)" }.joined(separator: ", ")
  }

  /// Lines for text output: a heading, then each outcome with its conditions.
  static func lines(_ groups: [AllowedOutcome], model: ConcreteModel) -> [String] {
    let count = Choices<Concrete>.all.count
    let heading =
      groups.count == 1
      ? "one outcome over all \(count) combinations of the allowed choices (SEMANTICS §8):"
      : "\(groups.count) distinct outcomes over \(count) combinations of the allowed choices "
        + "(SEMANTICS §8):"
    var lines = [heading]
    for group in groups {
      lines.append("  " + OutcomeText.line(group.outcome))
      lines.append("    decided by " + Decision(group.translation).text(model))
      for condition in group.conditions { lines.append("    " + text(condition)) }
    }
    return lines
  }

  /// The groups as the `allowed` member of the JSON output (docs/cli.md).
  static func json(_ groups: [AllowedOutcome]) -> JSON {
    .array(
      groups.map { group in
        .object([
          "outcome": OutcomeText.json(group.outcome),
          "decision": Decision(group.translation).json,
          "when": .array(
            group.conditions.map { condition in
              .object(condition.map { (key: $0.knob, value: .bool($0.value)) })
            }),
          "choices": .array(group.choices.map(ChoiceKnob.json)),
        ])
      })
  }
}
