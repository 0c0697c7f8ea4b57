/*
 * nestcheck_adapter.h -- the C ABI of a nestcheck adapter library, version 1.
 *
 * A shared library that exports the five functions below can be driven by nestcheck in
 * process (`--target library:PATH`): nestcheck hands it a machine state, then one trace
 * operation at a time, and reads back one observation per operation. Everything crosses the
 * boundary as plain structs; the library parses no JSON.
 *
 * The meaning of every operation and observation is that of the trace protocol
 * (docs/adapter-protocol.md); this header only fixes their binary form.
 *
 * Layout. Every struct is a sequence of 8-byte members (uint64_t, or a pointer on an LP64
 * platform), so there is no padding and the layout is the same for every compiler. The static
 * assertions at the end check it; nestcheck's tests check that its own copy of the layout
 * agrees.
 *
 * Lifetime. Pointers passed to the library (the state, its arrays, an operation, its batch)
 * are valid only during the call: copy what you keep. The library owns its instances.
 *
 * Threads. nestcheck calls one instance from one thread at a time; different instances may be
 * used from different threads, so avoid mutable globals.
 *
 * Faults. The library runs inside nestcheck's process: a crash in it (a null dereference, an
 * abort, a trap) ends the whole run, and a hang hangs it. Use the process protocol
 * (docs/adapter-protocol.md) for code you do not trust; it reports both as target faults.
 */
#ifndef NESTCHECK_ADAPTER_H
#define NESTCHECK_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. nestcheck refuses a library reporting another. */
#define NESTCHECK_ADAPTER_ABI_VERSION 1u

/* ---- Return codes of nestcheck_adapter_create and nestcheck_adapter_apply ---------------- */

/* Done; the out parameters are filled in. */
#define NESTCHECK_OK 0
/* The state (create) or the operation (apply) uses something this adapter does not implement:
   nestcheck skips it (a "setup refused" target error), it is not a divergence. */
#define NESTCHECK_UNSUPPORTED 1
/* Anything else is a failure of the adapter, reported as a target fault. */
#define NESTCHECK_FAILED 2

/* ---- The machine state (docs/state-format.md) -------------------------------------------- */

/* One nonzero 64-bit word of host physical memory. */
typedef struct nestcheck_word {
  uint64_t address; /* 8-byte aligned, below 2^52 */
  uint64_t value;
} nestcheck_word;

/* A host physical range [base, base + size). */
typedef struct nestcheck_range {
  uint64_t base;
  uint64_t size;
} nestcheck_range;

#define NESTCHECK_VENDOR_INTEL 0u
#define NESTCHECK_VENDOR_AMD 1u

#define NESTCHECK_NESTED_NONE 0u
#define NESTCHECK_NESTED_EPT 1u
#define NESTCHECK_NESTED_NPT 2u

typedef struct nestcheck_state {
  uint64_t abi_version; /* NESTCHECK_ADAPTER_ABI_VERSION */

  /* "processor" */
  uint64_t vendor;                /* NESTCHECK_VENDOR_* */
  uint64_t physical_address_bits; /* MAXPHYADDR, 32..52 */
  uint64_t gigabyte_pages;        /* 0 or 1 */

  /* "guest": raw registers */
  uint64_t cr0, cr3, cr4, efer, rflags, pkru, pkrs;

  /* "nested" */
  uint64_t nested_kind;                  /* NESTCHECK_NESTED_* */
  uint64_t nested_root;                  /* EPT: the EPTP; NPT: N_CR3; none: 0 */
  uint64_t nested_physical_address_bits; /* EPT or NPT: the host's width; none: 0 */
  uint64_t ept_execute_only;             /* EPT: execute-only supported (0/1) */
  uint64_t ept_gigabyte_pages;           /* EPT: 1-GiB EPT pages supported (0/1) */
  uint64_t ept_mode_based_execute;       /* EPT: mode-based execute control (0/1) */
  uint64_t npt_host_cr4;                 /* NPT: host CR4 at VMRUN */
  uint64_t npt_host_efer;                /* NPT: host EFER at VMRUN */

  /* "shadow": present when has_shadow is 1 */
  uint64_t has_shadow;
  uint64_t shadow_cr3, shadow_cr0, shadow_cr4, shadow_efer;
  const uint64_t *unsync_tables; /* guest frame numbers */
  uint64_t unsync_table_count;

  /* "hostRanges" */
  const nestcheck_range *host_ranges;
  uint64_t host_range_count;

  /* "memory": nonzero words in ascending address order; every other word reads zero */
  const nestcheck_word *memory;
  uint64_t memory_count;
} nestcheck_state;

/* ---- Operations (one trace line each) ---------------------------------------------------- */

#define NESTCHECK_OP_ACCESS 1u            /* the guest accesses a linear address */
#define NESTCHECK_OP_WRITE_GUEST 2u       /* the guest stores a word at a guest-physical address */
#define NESTCHECK_OP_WRITE_HOST 3u        /* the hypervisor stores a word at a host address */
#define NESTCHECK_OP_WRITE_REGISTER 4u    /* MOV to a register, an MSR or a VM-control field */
#define NESTCHECK_OP_INVLPG 5u            /* guest INVLPG */
#define NESTCHECK_OP_INVPCID 6u           /* guest INVPCID */
#define NESTCHECK_OP_INVEPT 7u            /* hypervisor INVEPT (AMD: flush the nested root) */
#define NESTCHECK_OP_INVVPID 8u           /* hypervisor INVVPID (AMD: TLB control, INVLPGA) */
#define NESTCHECK_OP_PARAVIRTUAL_BATCH 9u /* HYPERVISOR_mmu_update */

#define NESTCHECK_ACCESS_READ 0u
#define NESTCHECK_ACCESS_WRITE 1u
#define NESTCHECK_ACCESS_FETCH 2u

#define NESTCHECK_REGISTER_CR0 0u
#define NESTCHECK_REGISTER_CR3 1u /* bit 63 of the value: PCID "no flush", not stored */
#define NESTCHECK_REGISTER_CR4 2u
#define NESTCHECK_REGISTER_EFER 3u
#define NESTCHECK_REGISTER_RFLAGS 4u
#define NESTCHECK_REGISTER_PKRU 5u
#define NESTCHECK_REGISTER_PKRS 6u
#define NESTCHECK_REGISTER_VPID 7u        /* VMCS VPID / VMCB ASID */
#define NESTCHECK_REGISTER_NESTED_ROOT 8u /* EPTP / N_CR3 */

/* INVPCID types, INVEPT types and INVVPID types use the architecture's numbers:
   INVPCID 0 individual address, 1 single context, 2 all contexts including globals,
   3 all contexts; INVEPT 1 single context, 2 all contexts; INVVPID 0 individual address,
   1 single context, 2 all contexts, 3 single context retaining globals. */

/* One request of a paravirtual batch. */
typedef struct nestcheck_update {
  uint64_t entry;                   /* guest-physical address of the entry, 8-byte aligned */
  uint64_t value;                   /* the new entry, its frame a guest-physical frame */
  uint64_t preserve_accessed_dirty; /* MMU_PT_UPDATE_PRESERVE_AD (0/1) */
} nestcheck_update;

/* An operation: `kind` says which members mean something; the others are zero. */
typedef struct nestcheck_operation {
  uint64_t kind; /* NESTCHECK_OP_* */
  /* ACCESS, INVLPG, INVPCID, INVVPID: the linear address; WRITE_GUEST: the guest-physical
     address; WRITE_HOST: the host physical address (both 8-byte aligned) */
  uint64_t address;
  uint64_t value;    /* WRITE_GUEST, WRITE_HOST, WRITE_REGISTER: the value */
  uint64_t access;   /* ACCESS: NESTCHECK_ACCESS_* */
  uint64_t user;     /* ACCESS: 1 for a user-mode access (CPL 3, explicit) */
  uint64_t implicit; /* ACCESS: 1 for an implicit supervisor access (never with user) */
  uint64_t selector; /* WRITE_REGISTER: NESTCHECK_REGISTER_*; INVPCID/INVEPT/INVVPID: type */
  uint64_t context;  /* INVPCID: the PCID; INVEPT: the EPTP; INVVPID: the VPID */
  const nestcheck_update *updates; /* PARAVIRTUAL_BATCH */
  uint64_t update_count;
} nestcheck_operation;

/* ---- Observations ------------------------------------------------------------------------ */

#define NESTCHECK_RESULT_COMPLETED 0u            /* writes, flushes: nothing to report */
#define NESTCHECK_RESULT_TRANSLATED 1u           /* values[0] = host physical address */
#define NESTCHECK_RESULT_GENERAL_PROTECTION 2u   /* #GP(0): non-canonical address */
#define NESTCHECK_RESULT_PAGE_FAULT 3u           /* values[0] = error code, [1] = CR2 */
#define NESTCHECK_RESULT_EPT_VIOLATION 4u        /* values[0] = exit qualification,
                                                    [1] = guest-physical address,
                                                    [2] = guest-linear address,
                                                    [3] = 1 if [2] is reported */
#define NESTCHECK_RESULT_EPT_MISCONFIGURATION 5u /* values[0] = guest-physical address */
#define NESTCHECK_RESULT_NESTED_PAGE_FAULT 6u    /* values[0] = EXITINFO1, [1] = EXITINFO2 */
#define NESTCHECK_RESULT_BATCH 7u                /* values[0] = status (int64_t: 0 or -22),
                                                    [1] = requests applied */
#define NESTCHECK_RESULT_REFUSED 8u              /* values[0] = NESTCHECK_REFUSAL_* */

#define NESTCHECK_REFUSAL_UNBACKED_GUEST_PHYSICAL 1u
#define NESTCHECK_REFUSAL_INVALID_VALUE 2u
#define NESTCHECK_REFUSAL_VALIDATION_FAILED 3u

#define NESTCHECK_EXIT_GUEST_PAGE_FAULT 1u
#define NESTCHECK_EXIT_HYPERVISOR_PAGE_FAULT 2u
#define NESTCHECK_EXIT_WRITE_PROTECTION_TRAP 3u
#define NESTCHECK_EXIT_HYPERCALL 4u
#define NESTCHECK_EXIT_EPT_VIOLATION 5u
#define NESTCHECK_EXIT_EPT_MISCONFIGURATION 6u
#define NESTCHECK_EXIT_NESTED_PAGE_FAULT 7u
#define NESTCHECK_EXIT_INVLPG 8u
#define NESTCHECK_EXIT_INVPCID 9u
#define NESTCHECK_EXIT_CONTROL_REGISTER_ACCESS 10u

/* At most this many VM exits are reported per operation. */
#define NESTCHECK_MAX_EXITS 16u

typedef struct nestcheck_observation {
  uint64_t result;    /* NESTCHECK_RESULT_* */
  uint64_t values[4]; /* by result, as above; unused values are zero */
  uint64_t exit_count;
  uint64_t exits[NESTCHECK_MAX_EXITS]; /* NESTCHECK_EXIT_*, in the order taken */
} nestcheck_observation;

/* ---- The functions a library exports (the first five are required) ---------------------- */

/* NESTCHECK_ADAPTER_ABI_VERSION. Called first; nothing else is called on a mismatch. */
uint64_t nestcheck_adapter_abi_version(void);

/* The adapter's description: the same JSON object a process adapter prints as its handshake
   line (docs/adapter-protocol.md, "Handshake"), as a static NUL-terminated string. */
const char *nestcheck_adapter_describe(void);

/* Makes an instance over `state`. Returns NESTCHECK_OK and sets *instance; or
   NESTCHECK_UNSUPPORTED (or NESTCHECK_FAILED) and writes a NUL-terminated reason of at most
   message_size bytes (including the NUL) to `message`. */
int nestcheck_adapter_create(const nestcheck_state *state, void **instance, char *message,
                             size_t message_size);

/* Frees an instance. */
void nestcheck_adapter_destroy(void *instance);

/* Applies one operation and fills *observation (zeroed by the caller beforehand). Returns
   NESTCHECK_OK, NESTCHECK_UNSUPPORTED for an operation the adapter does not implement, or
   NESTCHECK_FAILED. */
int nestcheck_adapter_apply(void *instance, const nestcheck_operation *operation,
                            nestcheck_observation *observation);

/* Optional. Exports the machine as the instance holds it now, so that nestcheck can compare
   memory (the accessed and dirty flags walks set) with the reference model's: the registers and
   nested configuration into *state (its array members are not used), and every nonzero word of
   host memory through `word(context, address, value)`, in any order. Return NESTCHECK_OK.
   A library that exports it should say "exportsState": true in its description. */
int nestcheck_adapter_export(void *instance, nestcheck_state *state,
                             void (*word)(void *context, uint64_t address, uint64_t value),
                             void *context);

/* ---- Layout checks ----------------------------------------------------------------------- */

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(void *) == 8, "the nestcheck adapter ABI needs 64-bit pointers");
_Static_assert(sizeof(nestcheck_word) == 16, "nestcheck_word layout");
_Static_assert(sizeof(nestcheck_range) == 16, "nestcheck_range layout");
_Static_assert(sizeof(nestcheck_state) == 30 * 8, "nestcheck_state layout");
_Static_assert(sizeof(nestcheck_update) == 24, "nestcheck_update layout");
_Static_assert(sizeof(nestcheck_operation) == 10 * 8, "nestcheck_operation layout");
_Static_assert(sizeof(nestcheck_observation) == 22 * 8, "nestcheck_observation layout");
#endif

#ifdef __cplusplus
}
#endif

#endif /* NESTCHECK_ADAPTER_H */
