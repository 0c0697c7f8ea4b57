import ArgumentParser
import Machine
import ReferenceModel

/// `nestcheck translate`: the outcome of one access, in one line.
struct Translate: RenderingCommand {
  static let configuration = CommandConfiguration(
    abstract: "Translate one guest virtual address in a state snapshot and print the outcome.",
    discussion: """
      The reference model walks the guest's page tables, translating each guest
      table access and the final guest physical address through EPT or NPT when
      the state has nested paging (SEMANTICS §4.1), and prints what the access
      makes visible, in one line:

        translated: host physical ADDR
          The access completes at ADDR.
        #GP(0): non-canonical linear address, nothing walked
          The address is not canonical; no memory is read (§1.2).
        #PF: error code CODE (BITS), CR2 ADDR
          A guest page fault (§1.6). P: a present entry denied the access
          (clear: an entry was not present); W/R: a write; U/S: a user-mode
          access; RSVD: a reserved bit was set; I/D: a fetch; PK: a
          protection key denied it.
        EPT violation: qualification CODE (BITS), guest physical ADDR, ...
          VM exit 48 (§2.6). read, write, fetch: the access; R W X XU: the
          rights the EPT entries read grant together; linear-valid: the guest
          linear address is reported; final: the fault is on the final
          translation, or paging-entry: on a guest paging-entry access.
        EPT misconfiguration: guest physical ADDR
          VM exit 49: a malformed EPT entry (§2.3).
        #NPF: EXITINFO1 CODE (BITS), EXITINFO2 ADDR
          AMD #VMEXIT(NPF) (§3.3): the nested walk's page-fault error code
          (P RW US RSV ID; nested accesses are user-mode) plus final (bit 32)
          or page-table (bit 33); EXITINFO2 is the guest physical address.

      Where the architecture allows several behaviours (SEMANTICS §8) the model
      makes KVM's choices; --all-choices prints every distinct outcome instead,
      each with the choices that give it. `nestcheck explain` shows the walk
      behind an outcome.

      A fault is an answer, not an error: the exit code is 0 whatever the
      outcome. Exit code 2 means bad input, with one line naming the file,
      line:column and field; 4 an internal error (docs/exit-codes.md).

      Examples:
        nestcheck translate examples/states/ept-4level.json \\
          --gva 0x7f0000001234 --access write --user
        nestcheck translate examples/states/ept-4level.json \\
          --gva 0x7f0000601000 --access read --all-choices
        nestcheck translate examples/states/npt-4level.json \\
          --gva 0x7f0000600000 --access read --json
      """
  )

  @OptionGroup var options: AccessOptions

  /// The command's whole output.
  func render() throws(FormatError) -> String {
    let model = try options.model()
    let access = options.descriptor
    let translation = model.translate(options.gva, access)
    let allowed =
      options.allChoices ? AllowedOutcome.evaluate(model, options.gva, access) : nil
    if options.json {
      var members: [(key: String, value: JSON)] = [
        ("format", .string("nestcheck-translate")), ("version", .integer(1)),
        ("state", .string(options.state)), ("gva", .hex(options.gva)),
        ("access", OutcomeText.json(access)),
        ("outcome", OutcomeText.json(translation.outcome)),
        ("decision", Decision(translation).json),
      ]
      if let allowed { members.append(("allowed", AllowedOutcome.json(allowed))) }
      return JSON.object(members).text(pretty: true) + "\n"
    }
    guard let allowed else { return OutcomeText.line(translation.outcome) + "\n" }
    return AllowedOutcome.lines(allowed, model: model).joined(separator: "\n") + "\n"
  }
}
