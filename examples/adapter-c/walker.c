/*
 * walker.c -- the nested walker behind both front ends (see walker.h).
 *
 * Section numbers in comments refer to the Intel SDM, Vol. 3A chapter 4 (paging) and Vol. 3C
 * chapter 28 (EPT), and to nestcheck's SEMANTICS brief where a rule is an implementation
 * choice the architecture leaves open.
 */
#include "walker.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ------------------------------------------------------------------------ */

/* Bits hi..lo inclusive; empty when lo > hi. */
static uint64_t bits(unsigned hi, unsigned lo) {
  if (lo > hi) return 0;
  uint64_t width = hi - lo + 1;
  uint64_t ones = width >= 64 ? ~0ull : (1ull << width) - 1;
  return ones << lo;
}

static uint64_t bit(uint64_t value, unsigned position) { return (value >> position) & 1; }

/* Bits 51:12: where every paging entry keeps the next table or the frame. */
#define ADDRESS_MASK 0x000FFFFFFFFFF000ull

/* The index of `address` in a table at `level` (1 = page table ... 5 = PML5). */
static uint64_t table_index(uint64_t address, int level) {
  return (address >> (12 + 9 * (level - 1))) & 0x1FF;
}

/* The bytes a leaf at `level` maps: 4 KiB, 2 MiB or 1 GiB. */
static uint64_t page_size(int level) { return 1ull << (12 + 9 * (level - 1)); }

/* Whether an entry at `level` maps a page: a PTE, or a PDE/PDPTE with bit 7 (PS) set. Bit 7
   of a PML4E or PML5E is reserved, so such an entry is not a leaf (and will fault). */
static int is_leaf(uint64_t entry, int level) {
  return level == 1 || ((level == 2 || level == 3) && bit(entry, 7));
}

/* The address a leaf at `level` maps `address` to. */
static uint64_t leaf_target(uint64_t entry, int level, uint64_t address) {
  uint64_t offset = page_size(level) - 1;
  return (entry & ADDRESS_MASK & ~offset) | (address & offset);
}

/* ---- Sparse memory: 4-KiB pages in an open-addressing hash table keyed by frame ----------- */

typedef struct page_slot {
  uint64_t frame; /* NO_FRAME when the slot is empty */
  uint64_t *words;
} page_slot;

#define NO_FRAME UINT64_MAX

typedef struct memory {
  page_slot *slots;
  size_t capacity; /* a power of two */
  size_t used;
} memory;

static void *allocate(size_t bytes) {
  void *p = calloc(1, bytes);
  if (p == NULL) {
    fputs("walker: out of memory\n", stderr);
    abort();
  }
  return p;
}

static size_t frame_hash(uint64_t frame) {
  return (size_t)((frame * 0x9E3779B97F4A7C15ull) >> 20);
}

static void memory_init(memory *m, size_t capacity) {
  m->capacity = capacity;
  m->used = 0;
  m->slots = allocate(capacity * sizeof(page_slot));
  for (size_t i = 0; i < capacity; i++) m->slots[i].frame = NO_FRAME;
}

static void memory_free(memory *m) {
  for (size_t i = 0; i < m->capacity; i++) free(m->slots[i].words);
  free(m->slots);
}

/* The slot holding `frame`, or the empty slot where it would go. */
static page_slot *memory_slot(const memory *m, uint64_t frame) {
  size_t mask = m->capacity - 1;
  for (size_t i = frame_hash(frame) & mask;; i = (i + 1) & mask) {
    if (m->slots[i].frame == frame || m->slots[i].frame == NO_FRAME) return &m->slots[i];
  }
}

static void memory_grow(memory *m) {
  memory bigger;
  memory_init(&bigger, m->capacity * 2);
  for (size_t i = 0; i < m->capacity; i++) {
    if (m->slots[i].frame == NO_FRAME) continue;
    *memory_slot(&bigger, m->slots[i].frame) = m->slots[i];
    bigger.used++;
  }
  free(m->slots);
  *m = bigger;
}

static uint64_t memory_read(const memory *m, uint64_t address) {
  const page_slot *slot = memory_slot(m, address >> 12);
  return slot->words == NULL ? 0 : slot->words[(address & 0xFFF) >> 3];
}

static void memory_write(memory *m, uint64_t address, uint64_t value) {
  page_slot *slot = memory_slot(m, address >> 12);
  if (slot->words == NULL) {
    if (value == 0) return; /* absent words read as zero already */
    if (2 * (m->used + 1) > m->capacity) {
      memory_grow(m);
      slot = memory_slot(m, address >> 12);
    }
    slot->frame = address >> 12;
    slot->words = allocate(4096);
    m->used++;
  }
  slot->words[(address & 0xFFF) >> 3] = value;
}

/* ---- The machine -------------------------------------------------------------------------- */

struct walker {
  memory mem;
  /* The processor. */
  int amd;
  int gigabyte_pages;
  unsigned maxphyaddr;
  /* The guest's registers, raw. */
  uint64_t cr0, cr3, cr4, efer, rflags, pkru, pkrs;
  uint64_t vpid;
  /* The nested dimension. */
  uint64_t nested_kind;
  unsigned nested_bits; /* the host's physical-address width */
  int ept_execute_only, ept_gigabyte_pages, ept_mode_based;
  uint64_t npt_host_cr4, npt_host_efer;
  /* The EPTP or N_CR3 as written, and what is decoded from it. */
  uint64_t nested_root;
  uint64_t nested_table;
  int nested_levels;
  int ept_accessed_dirty;
};

/* Control-register bits the walk reads (SDM Vol. 3A §2.5). */
#define CR0_PG (1ull << 31)
#define CR0_WP (1ull << 16)
#define CR4_PAE (1ull << 5)
#define CR4_LA57 (1ull << 12)
#define CR4_PCIDE (1ull << 17)
#define CR4_SMEP (1ull << 20)
#define CR4_SMAP (1ull << 21)
#define CR4_PKE (1ull << 22)
#define CR4_PKS (1ull << 24)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)
#define RFLAGS_AC (1ull << 18)

/* x86 paging-entry bits (SDM Vol. 3A §4.5). */
#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_XD (1ull << 63)

/* #PF error-code bits (SDM Vol. 3A §4.7). */
#define PFEC_P (1ull << 0)
#define PFEC_W (1ull << 1)
#define PFEC_U (1ull << 2)
#define PFEC_RSVD (1ull << 3)
#define PFEC_I (1ull << 4)
#define PFEC_PK (1ull << 5)

/* EPT entry bits (SDM Vol. 3C §28.2.2). */
#define EPT_R (1ull << 0)
#define EPT_W (1ull << 1)
#define EPT_X (1ull << 2)
#define EPT_A (1ull << 8)
#define EPT_D (1ull << 9)
#define EPT_XU (1ull << 10)

/* Whether CR0/CR4/EFER give a paging mode this walker knows: paging off, or 4-/5-level. */
static int paging_mode_supported(uint64_t cr0, uint64_t cr4, uint64_t efer) {
  return !(cr0 & CR0_PG) || ((cr4 & CR4_PAE) && (efer & EFER_LMA));
}

static int guest_levels(const walker *w) {
  if (!(w->cr0 & CR0_PG)) return 0;
  return (w->cr4 & CR4_LA57) ? 5 : 4;
}

/* Linear-address canonicality (SDM Vol. 3A §4.5): bits 63:47 (63:56 with LA57) all equal. */
static int canonical(uint64_t address, int levels) {
  unsigned shift = levels == 5 ? 7 : 16;
  return (int64_t)(address << shift) >> shift == (int64_t)address;
}

/* Decodes an EPTP (SDM Vol. 3C §25.6.11): memory type UC or WB, walk length 4 or 5, bits 11:8
   and 63:N clear. Returns 0 for a value VM entry would refuse. */
static int decode_eptp(uint64_t eptp, unsigned n, uint64_t *root, int *levels, int *ad) {
  uint64_t memory_type = eptp & 7;
  uint64_t length = (eptp >> 3) & 7;
  if ((memory_type != 0 && memory_type != 6) || (length != 3 && length != 4)) return 0;
  if ((eptp & bits(11, 8)) != 0 || (eptp & bits(63, n)) != 0) return 0;
  *root = eptp & bits(n - 1, 12);
  *levels = (int)length + 1;
  *ad = (int)bit(eptp, 6);
  return 1;
}

static int set_nested_root(walker *w, uint64_t value) {
  if (w->nested_kind == NESTCHECK_NESTED_EPT) {
    if (!decode_eptp(value, w->nested_bits, &w->nested_table, &w->nested_levels,
                     &w->ept_accessed_dirty)) {
      return 0;
    }
  } else {
    w->nested_table = value & bits(w->nested_bits - 1, 12);
    w->nested_levels = (w->npt_host_cr4 & CR4_LA57) ? 5 : 4;
  }
  w->nested_root = value;
  return 1;
}

const char walker_description[] =
    "{\"protocol\":\"nestcheck-adapter\",\"version\":1,\"name\":\"example-c-walker\","
    "\"capabilities\":{\"mode\":\"nested\",\"nested\":[\"none\",\"ept\",\"npt\"],"
    "\"guestLevels\":[0,4,5],\"nestedLevels\":[4,5],"
    "\"operations\":[\"access\",\"write-guest\",\"write-host\",\"write-register\",\"invlpg\","
    "\"invpcid\",\"invept\",\"invvpid\",\"paravirtual-batch\"],"
    "\"features\":[\"large-pages\",\"accessed-dirty\",\"protection-keys\","
    "\"mode-based-execute\",\"no-tlb\"],\"exportsState\":true}}";

walker *walker_create(const nestcheck_state *s, char *message, size_t message_size) {
  const char *refusal = NULL;
  if (s->physical_address_bits < 32 || s->physical_address_bits > 52) {
    refusal = "processor.physicalAddressBits must be 32 to 52";
  } else if (!paging_mode_supported(s->cr0, s->cr4, s->efer)) {
    refusal = "32-bit and PAE guest paging are not implemented";
  } else if (s->nested_kind == NESTCHECK_NESTED_EPT && s->vendor != NESTCHECK_VENDOR_INTEL) {
    refusal = "EPT needs an Intel processor";
  } else if (s->nested_kind == NESTCHECK_NESTED_NPT && s->vendor != NESTCHECK_VENDOR_AMD) {
    refusal = "NPT needs an AMD processor";
  } else if (s->nested_kind > NESTCHECK_NESTED_NPT) {
    refusal = "unknown nested paging kind";
  } else if (s->nested_kind != NESTCHECK_NESTED_NONE &&
             (s->nested_physical_address_bits < 32 || s->nested_physical_address_bits > 52)) {
    refusal = "the nested physicalAddressBits must be 32 to 52";
  } else if (s->nested_kind == NESTCHECK_NESTED_NPT && !(s->npt_host_cr4 & CR4_PAE)) {
    refusal = "NPT with a legacy (non-PAE) host paging mode is not implemented";
  }
  if (refusal == NULL && s->nested_kind == NESTCHECK_NESTED_EPT) {
    uint64_t root;
    int levels, ad;
    if (!decode_eptp(s->nested_root, (unsigned)s->nested_physical_address_bits, &root, &levels,
                     &ad)) {
      refusal = "the EPTP would fail VM entry";
    }
  }
  if (refusal != NULL) {
    snprintf(message, message_size, "%s", refusal);
    return NULL;
  }

  walker *w = allocate(sizeof *w);
  size_t capacity = 64;
  while (capacity < 4 * (size_t)s->memory_count / 512 + 64) capacity *= 2;
  memory_init(&w->mem, capacity);
  for (uint64_t i = 0; i < s->memory_count; i++) {
    memory_write(&w->mem, s->memory[i].address & ~7ull, s->memory[i].value);
  }
  w->amd = s->vendor == NESTCHECK_VENDOR_AMD;
  w->gigabyte_pages = s->gigabyte_pages != 0;
  w->maxphyaddr = (unsigned)s->physical_address_bits;
  w->cr0 = s->cr0;
  w->cr3 = s->cr3;
  w->cr4 = s->cr4;
  w->efer = s->efer;
  w->rflags = s->rflags;
  w->pkru = s->pkru;
  w->pkrs = s->pkrs;
  w->vpid = 1;
  w->nested_kind = s->nested_kind;
  w->nested_bits = (unsigned)s->nested_physical_address_bits;
  w->ept_execute_only = s->ept_execute_only != 0;
  w->ept_gigabyte_pages = s->ept_gigabyte_pages != 0;
  w->ept_mode_based = s->ept_mode_based_execute != 0;
  w->npt_host_cr4 = s->npt_host_cr4;
  w->npt_host_efer = s->npt_host_efer;
  if (w->nested_kind != NESTCHECK_NESTED_NONE) set_nested_root(w, s->nested_root);
  return w;
}

void walker_export(const walker *w, nestcheck_state *s,
                   void (*word)(void *context, uint64_t address, uint64_t value),
                   void *context) {
  memset(s, 0, sizeof *s);
  s->abi_version = NESTCHECK_ADAPTER_ABI_VERSION;
  s->vendor = w->amd ? NESTCHECK_VENDOR_AMD : NESTCHECK_VENDOR_INTEL;
  s->physical_address_bits = w->maxphyaddr;
  s->gigabyte_pages = (uint64_t)w->gigabyte_pages;
  s->cr0 = w->cr0;
  s->cr3 = w->cr3;
  s->cr4 = w->cr4;
  s->efer = w->efer;
  s->rflags = w->rflags;
  s->pkru = w->pkru;
  s->pkrs = w->pkrs;
  s->nested_kind = w->nested_kind;
  s->nested_root = w->nested_root;
  s->nested_physical_address_bits = w->nested_bits;
  s->ept_execute_only = (uint64_t)w->ept_execute_only;
  s->ept_gigabyte_pages = (uint64_t)w->ept_gigabyte_pages;
  s->ept_mode_based_execute = (uint64_t)w->ept_mode_based;
  s->npt_host_cr4 = w->npt_host_cr4;
  s->npt_host_efer = w->npt_host_efer;
  for (size_t i = 0; i < w->mem.capacity; i++) {
    const page_slot *slot = &w->mem.slots[i];
    if (slot->words == NULL) continue;
    for (uint64_t index = 0; index < 512; index++) {
      uint64_t value = slot->words[index];
      if (value != 0) word(context, slot->frame << 12 | index << 3, value);
    }
  }
}

void walker_destroy(walker *w) {
  if (w == NULL) return;
  memory_free(&w->mem);
  free(w);
}

/* ---- Observations ------------------------------------------------------------------------- */

static void add_exit(nestcheck_observation *o, uint64_t exit) {
  if (o->exit_count < NESTCHECK_MAX_EXITS) o->exits[o->exit_count++] = exit;
}

static void observe(nestcheck_observation *o, uint64_t result, uint64_t v0, uint64_t v1) {
  o->result = result;
  o->values[0] = v0;
  o->values[1] = v1;
}

/* ---- Access descriptors ------------------------------------------------------------------- */

typedef struct access {
  uint64_t kind; /* NESTCHECK_ACCESS_* */
  int user;      /* CPL 3 and explicit */
  int implicit;  /* an implicit supervisor access to a system structure */
} access;

/* Why a guest-physical address is translated (SDM Vol. 3C §28.2.3.2). */
enum purpose {
  TABLE_READ, /* reading a guest paging entry during the walk */
  FINAL       /* the access's own guest-physical address */
};

/* ---- x86 paging entries (guest tables, and NPT tables with the host's rules) -------------- */

/* Reserved bits of a present x86-64 paging entry (SDM Vol. 3A Tables 4-15 to 4-20): bits 51:M
   everywhere, bit 63 without NXE, PS in PML4Es and PML5Es (and bit 8 there on AMD), bits
   29:13 of a 1-GiB leaf, 20:13 of a 2-MiB leaf, and PS in a PDPTE without 1-GiB pages. */
static uint64_t x86_reserved(unsigned maxphyaddr, int nxe, int amd, int gigabyte_pages,
                             int level, int leaf) {
  uint64_t reserved = bits(51, maxphyaddr) | (nxe ? 0 : PTE_XD);
  if (level >= 4) reserved |= (1ull << 7) | (amd ? 1ull << 8 : 0);
  if (level == 3 && leaf) reserved |= bits(29, 13);
  if (level == 3 && !gigabyte_pages) reserved |= 1ull << 7;
  if (level == 2 && leaf) reserved |= bits(20, 13);
  return reserved;
}

/* ---- EPT (SDM Vol. 3C §28.2) -------------------------------------------------------------- */

static int ept_present(const walker *w, uint64_t entry) {
  return (entry & 7) != 0 || (w->ept_mode_based && (entry & EPT_XU));
}

/* EPT misconfiguration (§28.2.3.1): write without read, execute-only where unsupported,
   reserved bits, a reserved memory type in a leaf. */
static int ept_misconfigured(const walker *w, uint64_t entry, int level, int leaf) {
  if ((entry & (EPT_R | EPT_W)) == EPT_W) return 1;
  if (!w->ept_execute_only && (entry & (EPT_R | EPT_W)) == 0) return 1;
  uint64_t reserved = bits(51, w->nested_bits);
  if (level >= 4) {
    reserved |= bits(7, 3);
  } else if (!leaf) {
    reserved |= bits(6, 3);
  } else if (level == 3) {
    reserved |= bits(29, 12) | (w->ept_gigabyte_pages ? 0 : 1ull << 7);
  } else if (level == 2) {
    reserved |= bits(20, 12);
  }
  if (entry & reserved) return 1;
  uint64_t memory_type = (entry >> 3) & 7;
  return leaf && (memory_type == 2 || memory_type == 3 || memory_type == 7);
}

/* The exit qualification (SDM Vol. 3C Table 28-7): the access bits given, the AND of R, W, X
   (and XU with mode-based execute control) over the entries reached, and bit 7, since every
   walk here has a guest-linear address. Bits 9-11 (advanced information) are not reported. */
static uint64_t ept_qualification(const walker *w, uint64_t access_bits, uint64_t effective) {
  uint64_t q = access_bits | (effective & 7) << 3 | 1ull << 7;
  if (w->ept_mode_based) q |= bit(effective, 10) << 6;
  return q;
}

/* The result of translating a guest-physical address. */
typedef struct nested_result {
  uint64_t host;
  uint64_t rights; /* EPT: the AND of bits 0, 1, 2 and 10; NPT: AND of R/W (bit 1) */
} nested_result;

static int ept_translate(walker *w, uint64_t gpa, int purpose, const access *acc,
                         uint64_t linear, int guest_user, nested_result *result,
                         nestcheck_observation *out) {
  uint64_t table = w->nested_table;
  uint64_t effective = EPT_R | EPT_W | EPT_X | EPT_XU;
  uint64_t path[6];
  int level = w->nested_levels;
  uint64_t entry;
  for (;; level--) {
    path[level] = table + 8 * table_index(gpa, level);
    entry = memory_read(&w->mem, path[level]);
    effective &= entry;
    int leaf = is_leaf(entry, level);
    if (!ept_present(w, entry)) break; /* a violation, judged below with effective = 0 */
    if (ept_misconfigured(w, entry, level, leaf)) {
      observe(out, NESTCHECK_RESULT_EPT_MISCONFIGURATION, gpa, 0);
      add_exit(out, NESTCHECK_EXIT_EPT_MISCONFIGURATION);
      return 0;
    }
    if (leaf) break;
    table = entry & ADDRESS_MASK;
  }
  /* What the access needs: its own kind for the final address; a read for a guest paging
     entry, or a write when EPT accessed/dirty flags are on (§28.2.4). */
  uint64_t need = purpose == FINAL ? acc->kind
                                   : (w->ept_accessed_dirty ? NESTCHECK_ACCESS_WRITE
                                                            : NESTCHECK_ACCESS_READ);
  int permitted;
  if (!ept_present(w, entry)) {
    permitted = 0;
  } else if (need == NESTCHECK_ACCESS_READ) {
    permitted = (effective & EPT_R) != 0;
  } else if (need == NESTCHECK_ACCESS_WRITE) {
    permitted = (effective & EPT_W) != 0;
  } else {
    permitted = w->ept_mode_based && guest_user ? (effective & EPT_XU) != 0
                                                : (effective & EPT_X) != 0;
  }
  if (!permitted) {
    uint64_t access_bits;
    if (purpose == FINAL) {
      access_bits = (acc->kind == NESTCHECK_ACCESS_READ ? 1 : 0) |
                    (acc->kind == NESTCHECK_ACCESS_WRITE ? 2 : 0) |
                    (acc->kind == NESTCHECK_ACCESS_FETCH ? 4 : 0) | 1ull << 8;
    } else {
      access_bits = w->ept_accessed_dirty ? 3 : 1;
    }
    out->result = NESTCHECK_RESULT_EPT_VIOLATION;
    out->values[0] = ept_qualification(w, access_bits, effective);
    out->values[1] = gpa;
    out->values[2] = linear;
    out->values[3] = 1;
    add_exit(out, NESTCHECK_EXIT_EPT_VIOLATION);
    return 0;
  }
  if (w->ept_accessed_dirty) { /* §28.2.4: A in every entry used, D in the leaf on a write */
    for (int l = w->nested_levels; l >= level; l--) {
      uint64_t old = memory_read(&w->mem, path[l]);
      uint64_t new = old | EPT_A | (l == level && need == NESTCHECK_ACCESS_WRITE ? EPT_D : 0);
      if (new != old) memory_write(&w->mem, path[l], new);
    }
  }
  result->host = leaf_target(entry, level, gpa);
  result->rights = effective;
  return 1;
}

/* ---- NPT (AMD APM Vol. 2 §15.25; SEMANTICS §3) --------------------------------------------- */

static int npt_translate(walker *w, uint64_t gpa, int purpose, const access *acc,
                         nested_result *result, nestcheck_observation *out) {
  /* Every nested access is a user access; reading guest paging entries is done as a write so
     that guest A/D flags can be set. */
  uint64_t need = purpose == FINAL ? acc->kind : NESTCHECK_ACCESS_WRITE;
  int nxe = (w->npt_host_efer & EFER_NXE) != 0;
  uint64_t table = w->nested_table;
  uint64_t path[6];
  uint64_t all = ~0ull; /* AND of the entries: R/W and U/S */
  uint64_t any = 0;     /* OR of the entries: XD */
  int level = w->nested_levels;
  uint64_t entry;
  uint64_t info = PFEC_U | (need == NESTCHECK_ACCESS_WRITE ? PFEC_W : 0) |
                  (need == NESTCHECK_ACCESS_FETCH && nxe ? PFEC_I : 0) |
                  (purpose == FINAL ? 1ull << 32 : 1ull << 33);
  for (;; level--) {
    path[level] = table + 8 * table_index(gpa, level);
    entry = memory_read(&w->mem, path[level]);
    if (!(entry & PTE_P)) goto fault;
    int leaf = is_leaf(entry, level);
    if (entry & x86_reserved(w->nested_bits, nxe, 1, 1, level, leaf)) {
      info |= PFEC_P | PFEC_RSVD;
      goto fault;
    }
    all &= entry;
    any |= entry;
    if (leaf) break;
    table = entry & ADDRESS_MASK;
  }
  if (!(all & PTE_US) || (need == NESTCHECK_ACCESS_WRITE && !(all & PTE_RW)) ||
      (need == NESTCHECK_ACCESS_FETCH && nxe && (any & PTE_XD))) {
    info |= PFEC_P;
    goto fault;
  }
  for (int l = w->nested_levels; l >= level; l--) { /* nested A, and D on a write */
    uint64_t old = memory_read(&w->mem, path[l]);
    uint64_t new = old | PTE_A | (l == level && need == NESTCHECK_ACCESS_WRITE ? PTE_D : 0);
    if (new != old) memory_write(&w->mem, path[l], new);
  }
  result->host = leaf_target(entry, level, gpa);
  result->rights = all & PTE_RW;
  return 1;
fault:
  observe(out, NESTCHECK_RESULT_NESTED_PAGE_FAULT, info, gpa);
  add_exit(out, NESTCHECK_EXIT_NESTED_PAGE_FAULT);
  return 0;
}

/* Translates a guest-physical address through the nested dimension, or reports its fault. */
static int nested_translate(walker *w, uint64_t gpa, int purpose, const access *acc,
                            uint64_t linear, int guest_user, nested_result *result,
                            nestcheck_observation *out) {
  switch (w->nested_kind) {
  case NESTCHECK_NESTED_EPT:
    return ept_translate(w, gpa, purpose, acc, linear, guest_user, result, out);
  case NESTCHECK_NESTED_NPT:
    return npt_translate(w, gpa, purpose, acc, result, out);
  default:
    result->host = gpa;
    result->rights = ~0ull;
    return 1;
  }
}

/* The host address backing a guest-physical address, ignoring nested permissions (how a
   hypervisor finds the page): 0 if no present, well-formed leaf maps it. */
static int nested_backing(const walker *w, uint64_t gpa, uint64_t *host) {
  if (w->nested_kind == NESTCHECK_NESTED_NONE) {
    *host = gpa;
    return 1;
  }
  int nxe = (w->npt_host_efer & EFER_NXE) != 0;
  uint64_t table = w->nested_table;
  for (int level = w->nested_levels;; level--) {
    uint64_t entry = memory_read(&w->mem, table + 8 * table_index(gpa, level));
    int leaf = is_leaf(entry, level);
    int usable = w->nested_kind == NESTCHECK_NESTED_EPT
                     ? ept_present(w, entry) && !ept_misconfigured(w, entry, level, leaf)
                     : (entry & PTE_P) &&
                           !(entry & x86_reserved(w->nested_bits, nxe, 1, 1, level, leaf));
    if (!usable) return 0;
    if (leaf) {
      *host = leaf_target(entry, level, gpa);
      return 1;
    }
    table = entry & ADDRESS_MASK;
  }
}

/* ---- The guest walk over the nested dimension (SDM Vol. 3A §4.5, Vol. 3C §28.2.2) --------- */

/* One guest paging entry read during the walk. */
typedef struct guest_entry {
  uint64_t guest;       /* its guest-physical address */
  uint64_t host;        /* its host physical address */
  uint64_t value;       /* as read */
  uint64_t page_rights; /* the nested rights of its table page */
} guest_entry;

/* Protection keys (SDM Vol. 3A §4.6.2): data accesses only; PKRU for user-mode addresses with
   CR4.PKE, IA32_PKRS for supervisor-mode addresses with CR4.PKS. */
static int key_denies(const walker *w, const access *acc, uint64_t key, int user_address) {
  if (acc->kind == NESTCHECK_ACCESS_FETCH) return 0;
  uint64_t keys;
  if (user_address) {
    if (!(w->cr4 & CR4_PKE)) return 0;
    keys = w->pkru;
  } else {
    if (!(w->cr4 & CR4_PKS)) return 0;
    keys = w->pkrs;
  }
  if (bit(keys, 2 * key)) return 1; /* access disable */
  int write_disable = (int)bit(keys, 2 * key + 1);
  return acc->kind == NESTCHECK_ACCESS_WRITE && write_disable &&
         (acc->user || (w->cr0 & CR0_WP));
}

/* The access-rights rules of SDM Vol. 3A §4.6.1, for the accumulated U, W and X. */
static int rights_deny(const walker *w, const access *acc, int user_address, int writable,
                       int executable) {
  int write = acc->kind == NESTCHECK_ACCESS_WRITE;
  int fetch = acc->kind == NESTCHECK_ACCESS_FETCH;
  if (acc->user) {
    if (!user_address) return 1;        /* user access to a supervisor-mode address */
    if (write && !writable) return 1;   /* user write to a read-only address */
    if (fetch && !executable) return 1; /* fetch from an execute-disabled address */
    return 0;
  }
  if (fetch) {
    if (!executable) return 1;
    return user_address && (w->cr4 & CR4_SMEP); /* SMEP */
  }
  /* SMAP: explicit supervisor data accesses are allowed with RFLAGS.AC, implicit never. */
  if (user_address && (w->cr4 & CR4_SMAP) && (acc->implicit || !(w->rflags & RFLAGS_AC))) {
    return 1;
  }
  return write && !writable && (w->cr0 & CR0_WP); /* supervisor write with CR0.WP */
}

static void translate(walker *w, uint64_t la, const access *acc, nestcheck_observation *out) {
  nested_result nested;
  int levels = guest_levels(w);
  if (levels == 0) {
    /* Guest paging off: the linear address is the guest-physical one, and a user-mode
       address (SDM Vol. 3C Table 28-7, bit 9): with mode-based execute control, XU decides. */
    if (nested_translate(w, la, FINAL, acc, la, 1, &nested, out)) {
      observe(out, NESTCHECK_RESULT_TRANSLATED, nested.host, 0);
    }
    return;
  }
  if (!canonical(la, levels)) {
    observe(out, NESTCHECK_RESULT_GENERAL_PROTECTION, 0, 0);
    return;
  }
  int nxe = (w->efer & EFER_NXE) != 0;
  uint64_t code = (acc->kind == NESTCHECK_ACCESS_WRITE ? PFEC_W : 0) | (acc->user ? PFEC_U : 0);
  if (acc->kind == NESTCHECK_ACCESS_FETCH && (nxe || (w->cr4 & CR4_SMEP))) code |= PFEC_I;

  guest_entry path[6];
  uint64_t table = w->cr3 & bits(w->maxphyaddr - 1, 12);
  uint64_t all = ~0ull, any = 0;
  int level = levels;
  for (;; level--) {
    guest_entry *e = &path[level];
    e->guest = table + 8 * table_index(la, level);
    if (!nested_translate(w, e->guest, TABLE_READ, acc, la, 0, &nested, out)) return;
    e->host = nested.host;
    e->page_rights = nested.rights;
    e->value = memory_read(&w->mem, e->host);
    if (!(e->value & PTE_P)) {
      observe(out, NESTCHECK_RESULT_PAGE_FAULT, code, la);
      return;
    }
    int leaf = is_leaf(e->value, level);
    if (e->value & x86_reserved(w->maxphyaddr, nxe, w->amd, w->gigabyte_pages, level, leaf)) {
      observe(out, NESTCHECK_RESULT_PAGE_FAULT, code | PFEC_P | PFEC_RSVD, la);
      return;
    }
    all &= e->value;
    any |= e->value;
    if (leaf) break;
    table = e->value & ADDRESS_MASK;
  }

  /* Rights accumulate over every level: U and W are ANDed, XD is ORed (with NXE). */
  uint64_t leaf_entry = path[level].value;
  int user_address = (all & PTE_US) != 0;
  int key_denied = key_denies(w, acc, (leaf_entry >> 59) & 0xF, user_address);
  int denied = rights_deny(w, acc, user_address, (all & PTE_RW) != 0, !(nxe && (any & PTE_XD)));
  if (key_denied || denied) {
    observe(out, NESTCHECK_RESULT_PAGE_FAULT, code | PFEC_P | (key_denied ? PFEC_PK : 0), la);
    return;
  }

  /* The final guest-physical address is translated before the guest's A/D flags are written
     (the order KVM's walker uses; SEMANTICS §4.1 allows either). */
  uint64_t gpa = leaf_target(leaf_entry, level, la);
  if (!nested_translate(w, gpa, FINAL, acc, la, user_address, &nested, out)) return;
  uint64_t host = nested.host;

  /* Accessed and dirty flags: A in every entry, D in the leaf for a write. Each is a write to
     a guest paging entry; without EPT A/D flags the EPT must allow it (§28.2.3.2), so check
     every needed write before making any. */
  int write = acc->kind == NESTCHECK_ACCESS_WRITE;
  for (int l = levels; l >= level; l--) {
    uint64_t value = path[l].value;
    int needed = !(value & PTE_A) || (l == level && write && !(value & PTE_D));
    if (needed && w->nested_kind == NESTCHECK_NESTED_EPT && !(path[l].page_rights & EPT_W)) {
      out->result = NESTCHECK_RESULT_EPT_VIOLATION;
      out->values[0] = ept_qualification(w, 2, path[l].page_rights);
      out->values[1] = path[l].guest;
      out->values[2] = la;
      out->values[3] = 1;
      add_exit(out, NESTCHECK_EXIT_EPT_VIOLATION);
      return;
    }
  }
  for (int l = levels; l >= level; l--) {
    uint64_t old = memory_read(&w->mem, path[l].host);
    uint64_t new = old | PTE_A | (l == level && write ? PTE_D : 0);
    if (new != old) memory_write(&w->mem, path[l].host, new);
  }
  observe(out, NESTCHECK_RESULT_TRANSLATED, host, 0);
}

/* ---- Operations --------------------------------------------------------------------------- */

static void refuse(nestcheck_observation *out, uint64_t reason) {
  observe(out, NESTCHECK_RESULT_REFUSED, reason, 0);
}

static void write_register(walker *w, uint64_t reg, uint64_t value, nestcheck_observation *out) {
  uint64_t cr0 = w->cr0, cr3 = w->cr3, cr4 = w->cr4, efer = w->efer;
  switch (reg) {
  case NESTCHECK_REGISTER_VPID:
    if (value > 0xFFFF) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
      return;
    }
    w->vpid = value;
    return;
  case NESTCHECK_REGISTER_NESTED_ROOT:
    if (w->nested_kind == NESTCHECK_NESTED_NONE || !set_nested_root(w, value)) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    }
    return;
  case NESTCHECK_REGISTER_PKRU:
  case NESTCHECK_REGISTER_PKRS:
    if (value > 0xFFFFFFFFull) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
      return;
    }
    *(reg == NESTCHECK_REGISTER_PKRU ? &w->pkru : &w->pkrs) = value;
    return;
  case NESTCHECK_REGISTER_RFLAGS:
    w->rflags = value;
    return;
  case NESTCHECK_REGISTER_CR0: cr0 = value; break;
  case NESTCHECK_REGISTER_CR3: cr3 = value & ~(1ull << 63); break; /* bit 63: no-flush */
  case NESTCHECK_REGISTER_CR4: cr4 = value; break;
  case NESTCHECK_REGISTER_EFER: efer = value; break;
  default:
    refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    return;
  }
  if (!paging_mode_supported(cr0, cr4, efer)) {
    refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    return;
  }
  w->cr0 = cr0;
  w->cr3 = cr3;
  w->cr4 = cr4;
  w->efer = efer;
}

int walker_apply(walker *w, const nestcheck_operation *op, nestcheck_observation *out) {
  memset(out, 0, sizeof *out);
  out->result = NESTCHECK_RESULT_COMPLETED;
  uint64_t host;
  switch (op->kind) {
  case NESTCHECK_OP_ACCESS: {
    if (op->access > NESTCHECK_ACCESS_FETCH) return NESTCHECK_FAILED;
    access acc = {op->access, op->user != 0, op->implicit != 0};
    translate(w, op->address, &acc, out);
    return NESTCHECK_OK;
  }
  case NESTCHECK_OP_WRITE_GUEST:
    if (!nested_backing(w, op->address, &host)) {
      refuse(out, NESTCHECK_REFUSAL_UNBACKED_GUEST_PHYSICAL);
    } else {
      memory_write(&w->mem, host & ~7ull, op->value);
    }
    return NESTCHECK_OK;
  case NESTCHECK_OP_WRITE_HOST:
    memory_write(&w->mem, op->address & ~7ull, op->value);
    return NESTCHECK_OK;
  case NESTCHECK_OP_WRITE_REGISTER:
    write_register(w, op->selector, op->value, out);
    return NESTCHECK_OK;
  case NESTCHECK_OP_INVLPG: /* no TLB: nothing is cached, so nothing to drop */
    return NESTCHECK_OK;
  case NESTCHECK_OP_INVPCID: {
    int levels = guest_levels(w);
    if (op->context > 0xFFF || op->selector > 3 ||
        (op->selector == 0 && levels != 0 && !canonical(op->address, levels))) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    }
    return NESTCHECK_OK;
  }
  case NESTCHECK_OP_INVEPT: {
    uint64_t root;
    int levels, ad;
    if (op->selector == 1) { /* single context: the EPTP must be valid */
      if (w->nested_kind == NESTCHECK_NESTED_NONE ||
          (w->nested_kind == NESTCHECK_NESTED_EPT &&
           !decode_eptp(op->context, w->nested_bits, &root, &levels, &ad))) {
        refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
      }
    } else if (op->selector != 2) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    }
    return NESTCHECK_OK;
  }
  case NESTCHECK_OP_INVVPID:
    if (op->context > 0xFFFF || op->selector > 3 || (op->selector != 2 && op->context == 0) ||
        (op->selector == 0 && guest_levels(w) != 5 && !canonical(op->address, 4))) {
      refuse(out, NESTCHECK_REFUSAL_INVALID_VALUE);
    }
    return NESTCHECK_OK;
  case NESTCHECK_OP_PARAVIRTUAL_BATCH: /* without a PV hypervisor: plain guest stores */
    for (uint64_t i = 0; i < op->update_count; i++) {
      const nestcheck_update *u = &op->updates[i];
      if (!nested_backing(w, u->entry, &host)) {
        observe(out, NESTCHECK_RESULT_BATCH, (uint64_t)(int64_t)-22, i);
        return NESTCHECK_OK;
      }
      uint64_t value = u->value;
      if (u->preserve_accessed_dirty) {
        value |= memory_read(&w->mem, host & ~7ull) & (PTE_A | PTE_D);
      }
      memory_write(&w->mem, host & ~7ull, value);
    }
    observe(out, NESTCHECK_RESULT_BATCH, 0, op->update_count);
    return NESTCHECK_OK;
  default:
    return NESTCHECK_UNSUPPORTED;
  }
}
