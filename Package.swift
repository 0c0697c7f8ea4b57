// swift-tools-version: 6.1
//
// nestcheck: a formal-model checker and test oracle for memory virtualization.
// The module layout follows ../shared/DESIGN.md; each target's role is noted beside it.

import PackageDescription

let package = Package(
  name: "nestcheck",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "nestcheck", targets: ["nestcheck"]),
    .library(name: "ReferenceModel", targets: ["ReferenceModel"]),
    .library(name: "FastMMU", targets: ["FastMMU"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
  ],
  targets: [
    // libz3 through pkg-config; `.ci/run` installs libz3-dev on a fresh machine.
    .systemLibrary(
      name: "CZ3",
      pkgConfig: "z3",
      providers: [.apt(["libz3-dev"])]
    ),
    // A small, safe Swift layer over Z3's C API.
    .target(name: "Z3", dependencies: ["CZ3"]),
    // Vocabulary shared by every part: accesses, outcomes, the state snapshot.
    .target(name: "Machine"),
    // The reference semantics, written once, generic over a bit-vector domain.
    .target(name: "ReferenceModel", dependencies: ["Machine"]),
    // The symbolic (Z3) interpretation of the reference model, and the properties it proves.
    .target(name: "Prover", dependencies: ["ReferenceModel", "Machine", "Z3"]),
    // The independent fast MMU: the code under test. It must not import ReferenceModel.
    // Its catalogue of injectable bugs (for the fuzzer's tests) exists only in debug builds.
    .target(
      name: "FastMMU", dependencies: ["Machine"],
      swiftSettings: [.define("NESTCHECK_BUGS", .when(configuration: .debug))]
    ),
    // The differential oracle: allowed-outcome sets, generation, shrinking, targets, campaigns.
    .target(
      name: "Oracle", dependencies: ["Machine", "ReferenceModel", "FastMMU", "Prover", "Workloads"]),
    // Builders for the benchmark workloads of DESIGN.md and for test states.
    .target(name: "Workloads", dependencies: ["Machine"]),
    // The correctness gate: spec files (YAML) with expected verdicts, built into states and run.
    .target(
      name: "Gate",
      dependencies: [
        "Machine", "ReferenceModel", "Prover", "FastMMU", "Oracle", "Workloads",
        .product(name: "Yams", package: "Yams"),
      ]
    ),
    // The command-line tool's commands, as a library so tests can drive them.
    .target(
      name: "NestcheckCLI",
      dependencies: [
        "Machine", "ReferenceModel", "Prover", "FastMMU", "Workloads", "Gate", "Oracle",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "nestcheck", dependencies: ["NestcheckCLI"]),

    .testTarget(name: "Z3Tests", dependencies: ["Z3"]),
    .testTarget(name: "MachineTests", dependencies: ["Machine"]),
    .testTarget(
      name: "ReferenceModelTests", dependencies: ["ReferenceModel", "Machine", "Workloads"]),
    .testTarget(
      name: "ProverTests", dependencies: ["Prover", "ReferenceModel", "Machine", "Workloads", "Z3"]),
    .testTarget(
      name: "FastMMUTests", dependencies: ["FastMMU", "Machine", "Workloads", "ReferenceModel"]),
    .testTarget(
      name: "GateTests",
      dependencies: ["Gate", "Machine", "Workloads", "ReferenceModel", "FastMMU"]),
    .testTarget(
      name: "OracleTests",
      dependencies: ["Oracle", "Machine", "ReferenceModel", "FastMMU", "Workloads"]),
    .testTarget(
      name: "NestcheckCLITests", dependencies: ["NestcheckCLI", "Machine", "Workloads", "Z3"]),
  ]
)
