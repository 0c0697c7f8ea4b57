import Foundation

/// Where ``AdapterBuild`` put its products, for the clean-up at exit (a C function pointer
/// cannot capture it).
nonisolated(unsafe) private var adapterBuildDirectory: String?

/// The C programs the adapter tests drive, compiled once per test run into a temporary
/// directory: the example walker of examples/adapter-c as a process and as a shared library,
/// and a deliberately misbehaving adapter. Without a C compiler the tests that need them are
/// skipped, and say why.
enum AdapterBuild {
  /// What was built, and where.
  struct Products {
    let directory: URL
    /// examples/adapter-c as a process speaking the JSON Lines protocol.
    let processAdapter: String
    /// examples/adapter-c as a shared library exporting the C ABI.
    let libraryAdapter: String
    /// ``misbehavingSource``, compiled: its first argument says how to misbehave.
    let misbehaving: String
    /// A library that exports the ABI functions but reports ABI version 2.
    let wrongVersionLibrary: String
    /// A library that exports none of them.
    let emptyLibrary: String
    /// Prints `offsetof` of every member of the ABI's structs, one `struct.member offset` a
    /// line.
    let layoutPrinter: String
  }

  /// The repository's root: three levels above this file.
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static let example = root.appendingPathComponent("examples/adapter-c")
  static let header = root.appendingPathComponent("adapters/include")

  /// The C compiler: `$CC`, else the first of cc, gcc, clang on `PATH`.
  static let compiler: String? = {
    if let cc = ProcessInfo.processInfo.environment["CC"], !cc.isEmpty { return cc }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for name in ["cc", "gcc", "clang"] {
      for directory in path.split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      }
    }
    return nil
  }()

  /// Whether a C compiler exists, for `.enabled(if:)`.
  static var compilerAvailable: Bool { compiler != nil }

  /// The products, built on first use; a build failure is reported by every test that needs it.
  static let products: Result<Products, BuildFailure> = {
    guard let compiler else { return .failure(BuildFailure("no C compiler (cc, gcc, clang)")) }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "nestcheck-adapters-\(getpid())-\(UUID().uuidString.prefix(8))")
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
      adapterBuildDirectory = directory.path
      atexit {  // the test run is over: nothing needs the products any more
        if let path = adapterBuildDirectory { try? FileManager.default.removeItem(atPath: path) }
      }
      let flags = [
        "-O2", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror",
        "-I", header.path,
      ]
      func source(_ name: String) -> String { example.appendingPathComponent(name).path }
      func output(_ name: String) -> String { directory.appendingPathComponent(name).path }
      func written(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
      }
      try run(
        compiler,
        flags + [
          "-o", output("walker-adapter"), source("adapter_process.c"), source("walker.c"),
          source("json.c"),
        ])
      try run(
        compiler,
        flags + [
          "-shared", "-fPIC", "-o", output("libwalker-adapter.so"), source("adapter_library.c"),
          source("walker.c"),
        ])
      try run(
        compiler,
        flags + ["-o", output("misbehaving"), try written("misbehaving.c", misbehavingSource)])
      try run(
        compiler,
        flags + [
          "-shared", "-fPIC", "-o", output("libwrong-version.so"),
          try written("wrong_version.c", wrongVersionSource),
        ])
      try run(
        compiler,
        flags + [
          "-shared", "-fPIC", "-o", output("libempty.so"),
          try written("empty.c", "int nestcheck_nothing_here = 1;\n"),
        ])
      try run(
        compiler,
        flags + ["-o", output("layout"), try written("layout.c", layoutSource)])
      return .success(
        Products(
          directory: directory, processAdapter: output("walker-adapter"),
          libraryAdapter: output("libwalker-adapter.so"), misbehaving: output("misbehaving"),
          wrongVersionLibrary: output("libwrong-version.so"), emptyLibrary: output("libempty.so"),
          layoutPrinter: output("layout")))
    } catch let failure as BuildFailure {
      return .failure(failure)
    } catch {
      return .failure(BuildFailure("\(error)"))
    }
  }()

  /// The products, or a thrown failure naming what did not build.
  static func built() throws -> Products { try products.get() }

  /// Runs a program to completion; throws with its output if it fails.
  @discardableResult
  static func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
      throw BuildFailure(
        "\(executable) \(arguments.joined(separator: " ")) failed "
          + "(status \(process.terminationStatus)):\n\(text)")
    }
    return text
  }

  struct BuildFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
  }

  /// An adapter that follows the protocol until its first argument tells it to misbehave:
  ///
  /// | mode            | behaviour                                                        |
  /// |-----------------|------------------------------------------------------------------|
  /// | `crash`         | answers the first operation, dies of SIGSEGV on the second       |
  /// | `exit`          | answers the first operation, exits with status 3 on the second   |
  /// | `hang`          | never answers an operation                                       |
  /// | `hang-reset`    | never answers a reset                                            |
  /// | `garbage`       | answers operations with a line that is not JSON                  |
  /// | `not-observation` | answers `{"result":"translated"}` (no address)                 |
  /// | `unsupported`   | answers operations `unsupported`                                 |
  /// | `wrong-version` | announces protocol version 2                                     |
  /// | `no-handshake`  | exits at once with status 0                                      |
  /// | `silent`        | starts, never writes anything                                    |
  /// | `refuse`        | answers every reset `unsupported`                                |
  /// | `chatty`        | writes 1 MiB to standard error before every answer               |
  /// | `long-line`     | answers with a line of 2 MiB                                     |
  /// | `ignore-eof`    | keeps running after its input closes                             |
  /// | `leaks-child`   | starts a child that sleeps forever, then hangs                   |
  ///
  /// A second argument N moves the misbehaviour of `crash`, `exit`, `hang`, `garbage`,
  /// `not-observation` and `unsupported` to the Nth operation after the last reset (counting
  /// from 1; the ones before it are answered correctly, the ones after it as the mode says):
  /// a fault in the middle of a pipelined window.
  ///
  /// Its correct answers are `ready` to a reset and `completed` to every operation.
  static let misbehavingSource = #"""
    #include <signal.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>

    static void hang(void) {
      for (;;) pause();
    }

    int main(int argc, char **argv) {
      const char *mode = argc > 1 ? argv[1] : "";
      /* The operation the misbehaviour starts at: the second for crash and exit, else the
         first, unless the second argument says otherwise. */
      int from = argc > 2 ? atoi(argv[2])
                 : strcmp(mode, "crash") == 0 || strcmp(mode, "exit") == 0 ? 2 : 1;
      if (strcmp(mode, "no-handshake") == 0) return 0;
      if (strcmp(mode, "silent") == 0) hang();
      printf("{\"protocol\":\"nestcheck-adapter\",\"version\":%d,\"name\":\"misbehaving\","
             "\"capabilities\":{\"nested\":[\"none\",\"ept\",\"npt\"],"
             "\"operations\":[\"access\",\"write-guest\",\"write-host\",\"invlpg\"]}}\n",
             strcmp(mode, "wrong-version") == 0 ? 2 : 1);
      fflush(stdout);
      if (strcmp(mode, "leaks-child") == 0 && fork() == 0) hang();
      static char line[1 << 20];
      int operations = 0;
      while (fgets(line, sizeof line, stdin) != NULL) {
        if (strcmp(mode, "chatty") == 0) {
          static char noise[1 << 20];
          memset(noise, 'x', sizeof noise);
          fwrite(noise, 1, sizeof noise, stderr);
        }
        if (strstr(line, "\"op\":\"reset\"") != NULL) {
          if (strcmp(mode, "hang-reset") == 0) hang();
          if (strcmp(mode, "refuse") == 0) {
            puts("{\"result\":\"unsupported\",\"message\":\"no states today\"}");
          } else {
            puts("{\"result\":\"ready\"}");
          }
          fflush(stdout);
          operations = 0;
          continue;
        }
        operations++;
        int misbehave = operations >= from;
        if (strcmp(mode, "leaks-child") == 0) hang();
        if (strcmp(mode, "hang") == 0 && misbehave) hang();
        if (strcmp(mode, "crash") == 0 && operations == from) {
          fputs("misbehaving: about to crash\n", stderr);
          fflush(stderr);
          raise(SIGSEGV);
        }
        if (strcmp(mode, "exit") == 0 && operations == from) exit(3);
        if (strcmp(mode, "garbage") == 0 && misbehave) {
          puts("this is not JSON");
        } else if (strcmp(mode, "not-observation") == 0 && misbehave) {
          puts("{\"result\":\"translated\"}");
        } else if (strcmp(mode, "unsupported") == 0 && misbehave) {
          puts("{\"result\":\"unsupported\",\"message\":\"not today\"}");
        } else if (strcmp(mode, "long-line") == 0) {
          for (int i = 0; i < 2 << 20; i++) putchar('x');
          putchar('\n');
        } else {
          puts("{\"result\":\"completed\"}");
        }
        fflush(stdout);
      }
      if (strcmp(mode, "ignore-eof") == 0) hang();
      return 0;
    }
    """#

  /// A library that exports every ABI function but reports version 2.
  static let wrongVersionSource = #"""
    #include "nestcheck_adapter.h"
    uint64_t nestcheck_adapter_abi_version(void) { return 2; }
    const char *nestcheck_adapter_describe(void) { return "{}"; }
    int nestcheck_adapter_create(const nestcheck_state *state, void **instance, char *message,
                                 size_t message_size) {
      (void)state; (void)message; (void)message_size;
      *instance = 0;
      return NESTCHECK_FAILED;
    }
    void nestcheck_adapter_destroy(void *instance) { (void)instance; }
    int nestcheck_adapter_apply(void *instance, const nestcheck_operation *operation,
                                nestcheck_observation *observation) {
      (void)instance; (void)operation; (void)observation;
      return NESTCHECK_FAILED;
    }
    """#

  /// Prints the ABI's layout as the C compiler sees it.
  static let layoutSource = #"""
    #include <stddef.h>
    #include <stdio.h>
    #include "nestcheck_adapter.h"
    #define MEMBER(s, m) printf(#s "." #m " %zu\n", offsetof(s, m))
    int main(void) {
      MEMBER(nestcheck_state, abi_version); MEMBER(nestcheck_state, vendor);
      MEMBER(nestcheck_state, physical_address_bits); MEMBER(nestcheck_state, gigabyte_pages);
      MEMBER(nestcheck_state, cr0); MEMBER(nestcheck_state, cr3); MEMBER(nestcheck_state, cr4);
      MEMBER(nestcheck_state, efer); MEMBER(nestcheck_state, rflags);
      MEMBER(nestcheck_state, pkru); MEMBER(nestcheck_state, pkrs);
      MEMBER(nestcheck_state, nested_kind); MEMBER(nestcheck_state, nested_root);
      MEMBER(nestcheck_state, nested_physical_address_bits);
      MEMBER(nestcheck_state, ept_execute_only); MEMBER(nestcheck_state, ept_gigabyte_pages);
      MEMBER(nestcheck_state, ept_mode_based_execute); MEMBER(nestcheck_state, npt_host_cr4);
      MEMBER(nestcheck_state, npt_host_efer); MEMBER(nestcheck_state, has_shadow);
      MEMBER(nestcheck_state, shadow_cr3); MEMBER(nestcheck_state, shadow_cr0);
      MEMBER(nestcheck_state, shadow_cr4); MEMBER(nestcheck_state, shadow_efer);
      MEMBER(nestcheck_state, unsync_tables); MEMBER(nestcheck_state, unsync_table_count);
      MEMBER(nestcheck_state, host_ranges); MEMBER(nestcheck_state, host_range_count);
      MEMBER(nestcheck_state, memory); MEMBER(nestcheck_state, memory_count);
      MEMBER(nestcheck_operation, kind); MEMBER(nestcheck_operation, address);
      MEMBER(nestcheck_operation, value); MEMBER(nestcheck_operation, access);
      MEMBER(nestcheck_operation, user); MEMBER(nestcheck_operation, implicit);
      MEMBER(nestcheck_operation, selector); MEMBER(nestcheck_operation, context);
      MEMBER(nestcheck_operation, updates); MEMBER(nestcheck_operation, update_count);
      MEMBER(nestcheck_observation, result); MEMBER(nestcheck_observation, values);
      MEMBER(nestcheck_observation, exit_count); MEMBER(nestcheck_observation, exits);
      MEMBER(nestcheck_update, entry); MEMBER(nestcheck_update, value);
      MEMBER(nestcheck_update, preserve_accessed_dirty);
      MEMBER(nestcheck_word, address); MEMBER(nestcheck_word, value);
      MEMBER(nestcheck_range, base); MEMBER(nestcheck_range, size);
      printf("sizeof.observation %zu\n", sizeof(nestcheck_observation));
      return 0;
    }
    """#
}
