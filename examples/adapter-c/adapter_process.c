/*
 * adapter_process.c -- the walker as a process speaking nestcheck's trace protocol, version 1
 * (docs/adapter-protocol.md): a handshake line, then one JSON request per line on standard
 * input and one JSON response per line on standard output. Diagnostics go to standard error.
 *
 * Usage: walker-adapter            (nestcheck starts it: --target process:./walker-adapter)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "walker.h"

/* ---- Responses ---------------------------------------------------------------------------- */

static void put_hex(const char *name, uint64_t value) {
  printf(",\"%s\":\"0x%llx\"", name, (unsigned long long)value);
}

/* Writes a string, escaping what JSON requires. */
static void put_string(const char *s) {
  putchar('"');
  for (; *s != '\0'; s++) {
    if (*s == '"' || *s == '\\') {
      printf("\\%c", *s);
    } else if ((unsigned char)*s < 0x20) {
      printf("\\u%04x", (unsigned)*s);
    } else {
      putchar(*s);
    }
  }
  putchar('"');
}

static void respond_message(const char *result, const char *message) {
  printf("{\"result\":\"%s\",\"message\":", result);
  put_string(message);
  puts("}");
}

static const char *const refusal_names[] = {
    [NESTCHECK_REFUSAL_UNBACKED_GUEST_PHYSICAL] = "unbacked-guest-physical",
    [NESTCHECK_REFUSAL_INVALID_VALUE] = "invalid-value",
    [NESTCHECK_REFUSAL_VALIDATION_FAILED] = "validation-failed",
};

static const char *const exit_names[] = {
    [NESTCHECK_EXIT_GUEST_PAGE_FAULT] = "guest-page-fault",
    [NESTCHECK_EXIT_HYPERVISOR_PAGE_FAULT] = "hypervisor-page-fault",
    [NESTCHECK_EXIT_WRITE_PROTECTION_TRAP] = "write-protection-trap",
    [NESTCHECK_EXIT_HYPERCALL] = "hypercall",
    [NESTCHECK_EXIT_EPT_VIOLATION] = "ept-violation",
    [NESTCHECK_EXIT_EPT_MISCONFIGURATION] = "ept-misconfiguration",
    [NESTCHECK_EXIT_NESTED_PAGE_FAULT] = "nested-page-fault",
    [NESTCHECK_EXIT_INVLPG] = "invlpg",
    [NESTCHECK_EXIT_INVPCID] = "invpcid",
    [NESTCHECK_EXIT_CONTROL_REGISTER_ACCESS] = "control-register-access",
};

/* One observation line, in the field order of nestcheck's own writer. */
static void respond_observation(const nestcheck_observation *o) {
  const uint64_t *v = o->values;
  switch (o->result) {
  case NESTCHECK_RESULT_COMPLETED: printf("{\"result\":\"completed\""); break;
  case NESTCHECK_RESULT_TRANSLATED:
    printf("{\"result\":\"translated\"");
    put_hex("hostPhysical", v[0]);
    break;
  case NESTCHECK_RESULT_GENERAL_PROTECTION: printf("{\"result\":\"general-protection\""); break;
  case NESTCHECK_RESULT_PAGE_FAULT:
    printf("{\"result\":\"page-fault\"");
    put_hex("errorCode", v[0]);
    put_hex("linearAddress", v[1]);
    break;
  case NESTCHECK_RESULT_EPT_VIOLATION:
    printf("{\"result\":\"ept-violation\"");
    put_hex("qualification", v[0]);
    put_hex("guestPhysical", v[1]);
    if (v[3]) put_hex("guestLinear", v[2]);
    break;
  case NESTCHECK_RESULT_EPT_MISCONFIGURATION:
    printf("{\"result\":\"ept-misconfiguration\"");
    put_hex("guestPhysical", v[0]);
    break;
  case NESTCHECK_RESULT_NESTED_PAGE_FAULT:
    printf("{\"result\":\"nested-page-fault\"");
    put_hex("exitInfo1", v[0]);
    put_hex("exitInfo2", v[1]);
    break;
  case NESTCHECK_RESULT_BATCH:
    printf("{\"result\":\"batch\",\"status\":%lld,\"applied\":%llu", (long long)(int64_t)v[0],
           (unsigned long long)v[1]);
    break;
  case NESTCHECK_RESULT_REFUSED:
    printf("{\"result\":\"refused\",\"reason\":\"%s\"", refusal_names[v[0]]);
    break;
  default: respond_message("error", "the walker produced an unknown result"); return;
  }
  if (o->exit_count > 0) {
    printf(",\"exits\":[");
    for (uint64_t i = 0; i < o->exit_count; i++) {
      printf("%s\"%s\"", i == 0 ? "" : ",", exit_names[o->exits[i]]);
    }
    putchar(']');
  }
  puts("}");
}

/* The "export-state" answer: the machine now, in the state snapshot format. */
static void put_word(void *first, uint64_t address, uint64_t value) {
  printf("%s\"0x%llx\":\"0x%llx\"", *(int *)first ? "" : ",", (unsigned long long)address,
         (unsigned long long)value);
  *(int *)first = 0;
}

static void ignore_word(void *context, uint64_t address, uint64_t value) {
  (void)context;
  (void)address;
  (void)value;
}

static void respond_state(const walker *w) {
  nestcheck_state s;
  walker_export(w, &s, ignore_word, NULL); /* the registers first, the memory below */
  printf("{\"result\":\"state\",\"state\":{\"format\":\"nestcheck-state\",\"version\":1,"
         "\"processor\":{\"vendor\":\"%s\",\"physicalAddressBits\":%llu,"
         "\"gigabytePages\":%s},\"guest\":{\"cr0\":",
         s.vendor == NESTCHECK_VENDOR_AMD ? "amd" : "intel",
         (unsigned long long)s.physical_address_bits, s.gigabyte_pages ? "true" : "false");
  printf("\"0x%llx\",\"cr3\":\"0x%llx\",\"cr4\":\"0x%llx\",\"efer\":\"0x%llx\","
         "\"rflags\":\"0x%llx\",\"pkru\":\"0x%llx\",\"pkrs\":\"0x%llx\"},",
         (unsigned long long)s.cr0, (unsigned long long)s.cr3, (unsigned long long)s.cr4,
         (unsigned long long)s.efer, (unsigned long long)s.rflags, (unsigned long long)s.pkru,
         (unsigned long long)s.pkrs);
  if (s.nested_kind == NESTCHECK_NESTED_EPT) {
    printf("\"nested\":{\"kind\":\"ept\",\"eptp\":\"0x%llx\",\"physicalAddressBits\":%llu,"
           "\"executeOnly\":%s,\"gigabytePages\":%s,\"modeBasedExecute\":%s},",
           (unsigned long long)s.nested_root, (unsigned long long)s.nested_physical_address_bits,
           s.ept_execute_only ? "true" : "false", s.ept_gigabyte_pages ? "true" : "false",
           s.ept_mode_based_execute ? "true" : "false");
  } else if (s.nested_kind == NESTCHECK_NESTED_NPT) {
    printf("\"nested\":{\"kind\":\"npt\",\"ncr3\":\"0x%llx\",\"hostCR4\":\"0x%llx\","
           "\"hostEFER\":\"0x%llx\",\"physicalAddressBits\":%llu},",
           (unsigned long long)s.nested_root, (unsigned long long)s.npt_host_cr4,
           (unsigned long long)s.npt_host_efer, (unsigned long long)s.nested_physical_address_bits);
  }
  printf("\"memory\":{");
  int first = 1;
  walker_export(w, &s, put_word, &first);
  puts("}}}");
}

/* ---- Requests ----------------------------------------------------------------------------- */

/* Reads member `key` of `object` as a 64-bit word into *out; a missing member leaves *out
   alone when `optional`. Returns 0, or -1 after naming the member in `error`. */
static int word_member(const json_value *object, const char *key, int optional, uint64_t *out,
                       char *error, size_t error_size) {
  const json_value *v = json_get(object, key);
  if (v == NULL && optional) return 0;
  if (v == NULL || json_word(v, out) != 0) {
    snprintf(error, error_size, "%s: expected a 64-bit number", key);
    return -1;
  }
  return 0;
}

static int flag_member(const json_value *object, const char *key, uint64_t *out) {
  const json_value *v = json_get(object, key);
  if (v != NULL) *out = v->type == JSON_TRUE;
  return 0;
}

/* Names of an enumeration, looked up by position. */
static int choose(const json_value *v, const char *const *names, size_t count, uint64_t *out) {
  for (size_t i = 0; i < count; i++) {
    if (names[i] != NULL && json_is(v, names[i])) {
      *out = i;
      return 0;
    }
  }
  return -1;
}

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

static const char *const access_names[] = {"read", "write", "fetch"};
static const char *const register_names[] = {"cr0",  "cr3",  "cr4",  "efer",       "rflags",
                                             "pkru", "pkrs", "vpid", "nested-root"};
static const char *const invpcid_names[] = {"individual-address", "single-context",
                                            "all-contexts-including-global", "all-contexts"};
static const char *const invept_names[] = {NULL, "single-context", "all-contexts"};
static const char *const invvpid_names[] = {"individual-address", "single-context",
                                            "all-contexts", "single-context-retaining-globals"};

/* Reads the "state" member of a reset request (docs/state-format.md) into *s; the arrays it
   points to are allocated and must be freed by the caller. */
static int read_state(const json_value *state, nestcheck_state *s, char *error, size_t size) {
  memset(s, 0, sizeof *s);
  s->abi_version = NESTCHECK_ADAPTER_ABI_VERSION;
  s->physical_address_bits = 46;
  s->gigabyte_pages = 1;
  s->rflags = 2;
  if (state == NULL || state->type != JSON_OBJECT || !json_is(json_get(state, "format"),
                                                              "nestcheck-state")) {
    snprintf(error, size, "state: expected a nestcheck-state object");
    return -1;
  }
  const json_value *processor = json_get(state, "processor");
  if (processor != NULL) {
    s->vendor = json_is(json_get(processor, "vendor"), "amd") ? NESTCHECK_VENDOR_AMD
                                                                : NESTCHECK_VENDOR_INTEL;
    if (word_member(processor, "physicalAddressBits", 1, &s->physical_address_bits, error,
                    size) != 0) {
      return -1;
    }
    flag_member(processor, "gigabytePages", &s->gigabyte_pages);
  }
  const json_value *guest = json_get(state, "guest");
  if (word_member(guest, "cr0", 0, &s->cr0, error, size) != 0 ||
      word_member(guest, "cr3", 0, &s->cr3, error, size) != 0 ||
      word_member(guest, "cr4", 0, &s->cr4, error, size) != 0 ||
      word_member(guest, "efer", 0, &s->efer, error, size) != 0 ||
      word_member(guest, "rflags", 1, &s->rflags, error, size) != 0 ||
      word_member(guest, "pkru", 1, &s->pkru, error, size) != 0 ||
      word_member(guest, "pkrs", 1, &s->pkrs, error, size) != 0) {
    return -1;
  }
  const json_value *nested = json_get(state, "nested");
  if (nested != NULL && json_is(json_get(nested, "kind"), "ept")) {
    s->nested_kind = NESTCHECK_NESTED_EPT;
    s->nested_physical_address_bits = 46;
    s->ept_execute_only = 1;
    s->ept_gigabyte_pages = 1;
    if (word_member(nested, "eptp", 0, &s->nested_root, error, size) != 0 ||
        word_member(nested, "physicalAddressBits", 1, &s->nested_physical_address_bits, error,
                    size) != 0) {
      return -1;
    }
    flag_member(nested, "executeOnly", &s->ept_execute_only);
    flag_member(nested, "gigabytePages", &s->ept_gigabyte_pages);
    flag_member(nested, "modeBasedExecute", &s->ept_mode_based_execute);
  } else if (nested != NULL && json_is(json_get(nested, "kind"), "npt")) {
    s->nested_kind = NESTCHECK_NESTED_NPT;
    s->nested_physical_address_bits = 48;
    s->npt_host_cr4 = 0x20;
    s->npt_host_efer = 0xD00;
    if (word_member(nested, "ncr3", 0, &s->nested_root, error, size) != 0 ||
        word_member(nested, "hostCR4", 1, &s->npt_host_cr4, error, size) != 0 ||
        word_member(nested, "hostEFER", 1, &s->npt_host_efer, error, size) != 0 ||
        word_member(nested, "physicalAddressBits", 1, &s->nested_physical_address_bits, error,
                    size) != 0) {
      return -1;
    }
  }
  /* "shadow" and "hostRanges" describe a hypervisor's own tables; a nested walker has none
     and reads neither. */
  const json_value *memory = json_get(state, "memory");
  if (memory != NULL && memory->type == JSON_OBJECT && memory->count > 0) {
    nestcheck_word *words = calloc(memory->count, sizeof *words);
    if (words == NULL) {
      snprintf(error, size, "out of memory");
      return -1;
    }
    s->memory = words;
    for (size_t i = 0; i < memory->count; i++) {
      const json_member *m = &memory->members[i];
      json_value key = {JSON_STRING, m->key, m->key_length, NULL, NULL, 0};
      if (json_word(&key, &words[i].address) != 0 || json_word(&m->value, &words[i].value)) {
        snprintf(error, size, "memory: expected \"address\": \"value\" pairs");
        return -1;
      }
      s->memory_count++;
    }
  }
  return 0;
}

/* Reads an operation line (the trace format of docs/adapter-protocol.md) into *op; a batch's
   updates are allocated and must be freed by the caller. */
static int read_operation(const json_value *line, const json_value *name, nestcheck_operation *op,
                          char *error, size_t size) {
  memset(op, 0, sizeof *op);
  if (json_is(name, "access")) {
    op->kind = NESTCHECK_OP_ACCESS;
    if (choose(json_get(line, "kind"), access_names, COUNT(access_names), &op->access) != 0) {
      snprintf(error, size, "kind: expected read, write or fetch");
      return -1;
    }
    flag_member(line, "user", &op->user);
    flag_member(line, "implicit", &op->implicit);
    return word_member(line, "address", 0, &op->address, error, size);
  }
  if (json_is(name, "write-guest") || json_is(name, "write-host")) {
    op->kind = json_is(name, "write-guest") ? NESTCHECK_OP_WRITE_GUEST : NESTCHECK_OP_WRITE_HOST;
    if (word_member(line, "address", 0, &op->address, error, size) != 0) return -1;
    return word_member(line, "value", 0, &op->value, error, size);
  }
  if (json_is(name, "write-register")) {
    op->kind = NESTCHECK_OP_WRITE_REGISTER;
    if (choose(json_get(line, "register"), register_names, COUNT(register_names),
               &op->selector) != 0) {
      snprintf(error, size, "register: unknown register");
      return -1;
    }
    return word_member(line, "value", 0, &op->value, error, size);
  }
  if (json_is(name, "invlpg")) {
    op->kind = NESTCHECK_OP_INVLPG;
    return word_member(line, "address", 0, &op->address, error, size);
  }
  const char *const *types = NULL;
  size_t type_count = 0;
  const char *context = NULL;
  if (json_is(name, "invpcid")) {
    op->kind = NESTCHECK_OP_INVPCID;
    types = invpcid_names;
    type_count = COUNT(invpcid_names);
    context = "pcid";
  } else if (json_is(name, "invept")) {
    op->kind = NESTCHECK_OP_INVEPT;
    types = invept_names;
    type_count = COUNT(invept_names);
    context = "eptp";
  } else if (json_is(name, "invvpid")) {
    op->kind = NESTCHECK_OP_INVVPID;
    types = invvpid_names;
    type_count = COUNT(invvpid_names);
    context = "vpid";
  }
  if (types != NULL) {
    if (choose(json_get(line, "type"), types, type_count, &op->selector) != 0) {
      snprintf(error, size, "type: unknown type");
      return -1;
    }
    if (word_member(line, context, 1, &op->context, error, size) != 0) return -1;
    return word_member(line, "address", 1, &op->address, error, size);
  }
  if (json_is(name, "paravirtual-batch")) {
    op->kind = NESTCHECK_OP_PARAVIRTUAL_BATCH;
    const json_value *list = json_get(line, "updates");
    if (list == NULL || list->type != JSON_ARRAY) {
      snprintf(error, size, "updates: expected an array");
      return -1;
    }
    nestcheck_update *updates = calloc(list->count + 1, sizeof *updates);
    if (updates == NULL) {
      snprintf(error, size, "out of memory");
      return -1;
    }
    op->updates = updates;
    for (size_t i = 0; i < list->count; i++) {
      if (word_member(&list->items[i], "entry", 0, &updates[i].entry, error, size) != 0 ||
          word_member(&list->items[i], "value", 0, &updates[i].value, error, size) != 0) {
        return -1;
      }
      flag_member(&list->items[i], "preserveAccessedDirty", &updates[i].preserve_accessed_dirty);
      op->update_count++;
    }
    return 0;
  }
  snprintf(error, size, "op: unknown operation");
  return -1;
}

/* ---- The request loop --------------------------------------------------------------------- */

/* Standard input, read in large pieces and handed out a line at a time. */
typedef struct input {
  char *data;
  size_t start, end, capacity;
} input;

/* The next request line (its newline replaced by a NUL; valid until the next call), or NULL at
   the end of the input. nestcheck may send several requests before it reads their answers, so
   the answers wait in stdout's buffer while more requests are at hand, and are flushed, in one
   write, just before waiting for more input: nestcheck has every answer it can get whenever
   the adapter waits, so neither side can block the other. */
static char *next_request(input *in) {
  for (;;) {
    char *line = in->data + in->start;
    char *newline = in->end > in->start ? memchr(line, '\n', in->end - in->start) : NULL;
    if (newline != NULL) {
      *newline = '\0';
      in->start = (size_t)(newline + 1 - in->data);
      return line;
    }
    fflush(stdout);
    memmove(in->data, line, in->end - in->start); /* keep the partial line, at the start */
    in->end -= in->start;
    in->start = 0;
    if (in->capacity - in->end < 4096) {
      size_t capacity = in->capacity < 65536 ? 65536 : 2 * in->capacity;
      char *data = realloc(in->data, capacity);
      if (data == NULL) return NULL;
      in->data = data;
      in->capacity = capacity;
    }
    ssize_t count = read(STDIN_FILENO, in->data + in->end, in->capacity - in->end - 1);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) { /* the end (or a broken input): a last line without a newline counts */
      if (in->end == 0) return NULL;
      in->data[in->end] = '\0';
      in->start = in->end = 0;
      return in->data;
    }
    in->end += (size_t)count;
  }
}

int main(void) {
  static char output[1 << 16];
  setvbuf(stdout, output, _IOFBF, sizeof output); /* answers leave in few writes */
  puts(walker_description);
  fflush(stdout);

  walker *w = NULL;
  input in = {NULL, 0, 0, 0};
  char *line;
  char error[256];
  while ((line = next_request(&in)) != NULL) {
    json_value request;
    if (json_parse(line, &request, error, sizeof error) != 0) {
      respond_message("error", error);
    } else {
      const json_value *name = json_get(&request, "op");
      if (json_is(name, "export-state") && w != NULL) {
        respond_state(w);
      } else if (json_is(name, "reset")) {
        nestcheck_state state;
        if (read_state(json_get(&request, "state"), &state, error, sizeof error) != 0) {
          respond_message("error", error);
        } else {
          walker_destroy(w);
          w = walker_create(&state, error, sizeof error);
          if (w == NULL) {
            respond_message("unsupported", error);
          } else {
            puts("{\"result\":\"ready\"}");
          }
        }
        free((void *)state.memory);
      } else if (w == NULL) {
        respond_message("error", "no machine state yet: send a reset first");
      } else {
        nestcheck_operation op;
        nestcheck_observation observation;
        if (read_operation(&request, name, &op, error, sizeof error) != 0) {
          respond_message("error", error);
        } else if (walker_apply(w, &op, &observation) == NESTCHECK_UNSUPPORTED) {
          respond_message("unsupported", "operation not implemented");
        } else {
          respond_observation(&observation);
        }
        free((void *)op.updates);
      }
      json_free(&request);
    }
  }
  fflush(stdout);
  walker_destroy(w);
  free(in.data);
  return 0; /* end of input: nestcheck is done with us */
}
