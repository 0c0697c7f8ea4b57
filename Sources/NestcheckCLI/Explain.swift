import ArgumentParser
import Machine
import ReferenceModel

/// `nestcheck explain`: the whole walk behind one access, reference by reference.
struct Explain: RenderingCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show the whole walk behind one access: every memory reference, in order.",
    discussion: """
      Prints every memory reference of the walk (SEMANTICS §4.2) in the order
      the hardware makes them, one row each:

        #              the reference's number, from 1
        dimension      guest: a guest paging entry;
                       nested for guest L: the EPT or NPT walk of the guest
                       physical address of the guest's level-L entry;
                       nested final: the walk of the final guest physical
                       address
        level          PML5E, PML4E, PDPTE, PDE, PTE; EPT or NPT in front
                       for nested tables
        host physical  the address read
        entry          the value read
        decoded        the bits that are set, by name (x86: P R/W U/S PWT
                       PCD A D PS PAT G XD key; EPT: R W X memtype IPAT PS A
                       D XU SVE); clear permission bits with a minus (-R/W,
                       -U/S, -R, -W, -X); where the entry points (-> table,
                       -> 4 KiB frame ...); !! before reserved bits that are
                       set and EPT misconfigurations

      A 4-level guest over 4-level EPT makes 24 references, 5 over 5 makes 35,
      large pages make fewer, and a fault ends the walk early.

      Then: the guest rights accumulated over the path (§1.5) and the guest
      page size; the nested rights on the final guest physical address and the
      nested page size; the accessed/dirty writes the access performs (§1.8,
      §2.5, §3.2), one line per entry; the rule that decided, with the
      SEMANTICS step it implements; and the outcome, as `nestcheck translate`
      prints it (see its --help for the outcome kinds). With --all-choices the
      walk shown is the one under KVM's choices, followed by every outcome the
      architecture allows.

      The exit code is 0 whatever the outcome; 2 means bad input, with one line
      naming the file, line:column and field; 4 an internal error
      (docs/exit-codes.md).

      Examples:
        nestcheck explain examples/states/ept-4level.json \\
          --gva 0x7f0000001234 --access write --user
        nestcheck explain examples/states/ept-4level.json \\
          --gva 0x7f0000600000 --access read --all-choices
        nestcheck explain examples/states/npt-4level.json \\
          --gva 0x7f0000600000 --access read --json
      """
  )

  @OptionGroup var options: AccessOptions

  /// The command's whole output.
  func render() throws(FormatError) -> String {
    let model = try options.model()
    let explanation = Explanation(model: model, options: options)
    return options.json
      ? explanation.json.text(pretty: true) + "\n"
      : explanation.lines.joined(separator: "\n") + "\n"
  }
}

/// One explained access: the walk under KVM's choices and, if asked, every allowed outcome.
struct Explanation {
  let model: ConcreteModel
  let options: AccessOptions
  let access: Access
  let translation: Translation<Concrete>
  let allowed: [AllowedOutcome]?

  init(model: ConcreteModel, options: AccessOptions) {
    self.model = model
    self.options = options
    access = options.descriptor
    translation = model.translate(options.gva, access, recording: true)
    allowed = options.allChoices ? AllowedOutcome.evaluate(model, options.gva, access) : nil
  }

  private var configuration: Configuration { model.state.configuration }

  /// Whether the final nested walk was reached at all.
  private var finalReached: Bool {
    translation.references.contains { $0.stage == .nestedFinal }
  }

  /// `4-level guest paging over 4-level EPT (A/D flags off)`.
  var machine: String {
    let guest =
      configuration.guestLevels == 0
      ? "guest paging off" : "\(configuration.guestLevels)-level guest paging"
    let over = configuration.guestLevels == 0 ? ", " : " over "
    switch model.state.nested {
    case .none: return guest + ", no nested paging"
    case .ept(_, let accessedDirty, let modeBasedExecute):
      let flags =
        "A/D flags " + (accessedDirty ? "on" : "off")
        + (modeBasedExecute ? ", mode-based execute" : "")
      return guest + over + "\(configuration.nestedLevels)-level EPT (\(flags))"
    case .npt:
      return guest + over + "\(configuration.nestedLevels)-level NPT"
    }
  }

  /// The dimension column: `guest`, `nested for guest PML4E`, `nested final`.
  func dimension(_ reference: MemoryReference<Concrete>) -> String {
    switch reference.stage {
    case .guest: "guest"
    case .nestedTable: "nested for guest " + pagingLevelName(reference.guestLevel)
    case .nestedFinal: "nested final"
    case .none: "none"
    }
  }

  // MARK: Text

  var lines: [String] {
    let address =
      configuration.guestLevels == 0
      ? "guest physical \(hex(options.gva)) (guest paging is off)"
      : "guest virtual \(hex(options.gva))"
    var lines = [
      "\(OutcomeText.describe(access)) at \(address) in \(options.state)",
      "machine: \(machine); \(translation.referenceCount) memory references", "",
    ]
    let header = ["#", "dimension", "level", "host physical", "entry", "decoded"]
    let rows = translation.references.enumerated().map { i, reference in
      [
        "\(i + 1)", dimension(reference),
        model.levelName(stage: reference.stage, level: reference.level), hex(reference.address),
        hex(reference.value), EntryText.decoded(model.describe(reference)),
      ]
    }
    lines += table([header] + rows)
    lines.append("")
    let labels = [
      ("guest rights", guestRights), ("nested rights", nestedRights),
      ("A/D writes", accessedDirtyWrites.first ?? "none"),
    ]
    for (label, text) in labels { lines.append(pad(label + ":", 15) + text) }
    for more in accessedDirtyWrites.dropFirst() { lines.append(pad("", 15) + more) }
    lines.append(pad("decided by:", 15) + Decision(translation).text(model))
    lines.append(pad("outcome:", 15) + OutcomeText.line(translation.outcome))
    if let allowed {
      lines.append("")
      lines += AllowedOutcome.lines(allowed, model: model)
    }
    return lines
  }

  private var guestRights: String {
    guard configuration.guestLevels > 0 else { return "none: guest paging is off" }
    let r = translation.guestRights
    let rights = [
      r.user ? "user-mode address" : "supervisor-mode address",
      r.writable ? "writable" : "read-only", r.executable ? "executable" : "not executable",
      "protection key \(translation.guestKey)",
    ].joined(separator: ", ")
    let size = translation.guestPageSize
    return size == 0
      ? "walk incomplete; over the entries read: " + rights
      : rights + "; \(OutcomeText.size(size)) page"
  }

  private var nestedRights: String {
    if case .none = configuration.nested { return "none: no nested paging" }
    guard finalReached else { return "final guest physical address not reached" }
    let r = translation.nestedRights
    let rights = [
      r.read ? "readable" : "not readable", r.write ? "writable" : "not writable",
      r.execute ? "executable" : "not executable",
    ].joined(separator: ", ")
    let size = translation.nestedPageSize
    return size == 0
      ? "walk incomplete; over the entries read: " + rights
      : rights + "; \(OutcomeText.size(size)) page"
  }

  /// One entry the access writes accessed/dirty bits into.
  struct EntryWrite {
    /// Whether it is a guest entry (else a nested one).
    var guest: Bool
    var level: Int
    var levelName: String
    var address: UInt64
    /// The union of the bits written.
    var bits: UInt64
    var names: [String]
  }

  /// The A/D writes the access performs, one per entry with the union of its bits, in order of
  /// first write. (The model may list one entry several times, once per nested walk through
  /// it; A/D writes only set bits, so the union is their effect.)
  var entryWrites: [EntryWrite] {
    var writes: [EntryWrite] = []
    for update in translation.performedUpdates {
      if let i = writes.firstIndex(where: { $0.address == update.address }) {
        writes[i].bits |= update.bits
      } else {
        writes.append(
          EntryWrite(
            guest: update.stage == .guest, level: update.level,
            levelName: model.levelName(stage: update.stage, level: update.level),
            address: update.address, bits: update.bits, names: []))
      }
    }
    for i in writes.indices {
      writes[i].names = model.accessedDirtyNames(
        writes[i].bits, stage: writes[i].guest ? .guest : .nestedTable)
    }
    return writes
  }

  private var accessedDirtyWrites: [String] {
    entryWrites.map { write in
      "\(write.guest ? "guest " : "")\(write.levelName) at \(hex(write.address)): "
        + write.names.joined(separator: " ")
    }
  }

  // MARK: JSON

  var json: JSON {
    var members: [(key: String, value: JSON)] = [
      ("format", .string("nestcheck-explain")), ("version", .integer(1)),
      ("state", .string(options.state)), ("gva", .hex(options.gva)),
      ("access", OutcomeText.json(access)),
      (
        "machine",
        .object([
          "guestLevels": .integer(configuration.guestLevels),
          "nested": .string(nestedKind), "nestedLevels": .integer(configuration.nestedLevels),
        ])
      ),
      ("choices", ChoiceKnob.json(.kvm)),
      ("referenceCount", .integer(translation.referenceCount)),
      ("references", .array(translation.references.enumerated().map(referenceJSON))),
      ("guestRights", guestRightsJSON), ("guestPageSize", sizeJSON(translation.guestPageSize)),
      ("nestedRights", nestedRightsJSON),
      ("nestedPageSize", finalReached ? sizeJSON(translation.nestedPageSize) : .null),
      ("accessedDirtyWrites", .array(entryWrites.map(writeJSON))),
      ("decision", Decision(translation).json),
      ("outcome", OutcomeText.json(translation.outcome)),
    ]
    if let allowed { members.append(("allowed", AllowedOutcome.json(allowed))) }
    return .object(members)
  }

  private var nestedKind: String {
    switch configuration.nested {
    case .none: "none"
    case .ept: "ept"
    case .npt: "npt"
    }
  }

  private func referenceJSON(_ index: Int, _ reference: MemoryReference<Concrete>) -> JSON {
    var members: [(key: String, value: JSON)] = [
      ("index", .integer(index + 1)), ("dimension", .string(OutcomeText.name(reference.stage))),
    ]
    if reference.stage == .nestedTable {
      members.append(("guestLevel", .integer(reference.guestLevel)))
    }
    members += [
      ("level", .integer(reference.level)),
      ("levelName", .string(model.levelName(stage: reference.stage, level: reference.level))),
      ("hostPhysical", .hex(reference.address)), ("value", .hex(reference.value)),
      ("entry", EntryText.json(model.describe(reference))),
    ]
    return .object(members)
  }

  private func sizeJSON(_ size: UInt64) -> JSON { size == 0 ? .null : .integer(size) }

  private var guestRightsJSON: JSON {
    guard configuration.guestLevels > 0 else { return .null }
    let r = translation.guestRights
    return .object([
      "user": .bool(r.user), "writable": .bool(r.writable), "executable": .bool(r.executable),
      "protectionKey": .integer(translation.guestKey),
    ])
  }

  private var nestedRightsJSON: JSON {
    if case .none = configuration.nested { return .null }
    guard finalReached else { return .null }
    let r = translation.nestedRights
    return .object(["read": .bool(r.read), "write": .bool(r.write), "execute": .bool(r.execute)])
  }

  private func writeJSON(_ write: EntryWrite) -> JSON {
    .object([
      "tables": .string(write.guest ? "guest" : "nested"), "level": .integer(write.level),
      "levelName": .string(write.levelName), "hostPhysical": .hex(write.address),
      "bitsSet": .hex(write.bits), "names": .array(write.names.map { .string($0) }),
    ])
  }
}

/// How explain shows one decoded entry.
enum EntryText {
  /// Permission bits shown with a minus when clear.
  static let permissions: Set<String> = ["R/W", "U/S", "R", "W", "X"]

  /// `P R/W U/S A -> table 0x3000`, `R W X memtype=WB -> 4 KiB frame 0x5000`,
  /// `not present (P = 0)`, `P R/W !! reserved bit 51 set`.
  static func decoded(_ entry: EntryDescription) -> String {
    guard entry.present else {
      return entry.format == .x86 ? "not present (P = 0)" : "not present (R W X = 0 0 0)"
    }
    var parts: [String] = []
    for field in entry.fields {
      if field.name == "memtype" {
        let name = field.valueName.flatMap { $0 == "reserved" ? nil : $0 }
        parts.append("memtype=" + (name ?? "\(field.value)"))
      } else if field.isFlag {
        if field.value == 1 {
          parts.append(field.name)
        } else if permissions.contains(field.name) {
          parts.append("-" + field.name)
        }
      } else if field.value != 0 {
        parts.append("\(field.name)=\(field.value)")
      }
    }
    let size = OutcomeText.size(1 << UInt64(12 + 9 * (entry.level - 1)))
    parts.append(
      entry.leaf ? "-> \(size) frame \(hex(entry.address))" : "-> table \(hex(entry.address))")
    if entry.reservedBitsSet != 0 {
      let bits = (0..<64).filter { entry.reservedBitsSet >> UInt64($0) & 1 == 1 }
      parts.append(
        "!! reserved bit\(bits.count == 1 ? "" : "s") "
          + bits.map(String.init).joined(separator: ", ") + " set")
    }
    for problem in entry.problems where problem != .reservedBit && problem != .eptReservedBit {
      parts.append("!! " + problem.summary)
    }
    return parts.joined(separator: " ")
  }

  /// The entry as JSON (docs/cli.md): format, present, leaf, fields by name, where it points,
  /// the reserved bits set and the rules it breaks by itself.
  static func json(_ entry: EntryDescription) -> JSON {
    var members: [(key: String, value: JSON)] = [
      ("format", .string(entry.format.rawValue)), ("present", .bool(entry.present)),
      ("leaf", .bool(entry.leaf)),
      ("fields", .object(entry.fields.map { (key: $0.name, value: .integer($0.value)) })),
    ]
    if let type = entry.field("memtype")?.valueName {
      members.append(("memoryType", .string(type)))
    }
    if entry.present {
      members.append((entry.leaf ? "frame" : "table", .hex(entry.address)))
    }
    members += [
      ("reservedBitsSet", .hex(entry.reservedBitsSet)),
      ("problems", .array(entry.problems.map { .string(OutcomeText.name($0)) })),
    ]
    return .object(members)
  }
}

/// Pads `text` with spaces to `width` characters.
func pad(_ text: String, _ width: Int) -> String {
  text + String(repeating: " ", count: max(0, width - text.count))
}

/// Rows laid out in columns two spaces apart; the first column right-aligned, the last not
/// padded.
func table(_ rows: [[String]]) -> [String] {
  guard let columns = rows.first?.count else { return [] }
  let widths = (0..<columns).map { c in rows.map { $0[c].count }.max() ?? 0 }
  return rows.map { row in
    row.enumerated().map { c, cell in
      if c == 0 { return String(repeating: " ", count: widths[0] - cell.count) + cell }
      return c == columns - 1 ? cell : pad(cell, widths[c])
    }.joined(separator: "  ")
  }
}
