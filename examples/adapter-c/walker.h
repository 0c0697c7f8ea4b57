/*
 * walker.h -- a small nested-paging MMU, written from the Intel SDM (Vol. 3A ch. 4, Vol. 3C
 * ch. 28) and the AMD APM's nested-paging rules, as an example of an implementation that
 * nestcheck drives from outside.
 *
 * It translates guest linear addresses through the guest's 4- or 5-level tables (or with
 * guest paging off) and Intel EPT or AMD NPT of 4 or 5 levels (or none), with large pages,
 * accessed/dirty flags (guest, EPT with EPTP[6], NPT), SMEP, SMAP, protection keys and EPT
 * mode-based execute control. It keeps no TLB: every access walks the tables afresh, which
 * the architecture always allows, so flushes have nothing to do.
 *
 * Two front ends share it: adapter_process.c speaks the JSON Lines protocol on standard input
 * and output, adapter_library.c exports the C ABI of nestcheck_adapter.h.
 */
#ifndef WALKER_H
#define WALKER_H

#include <stddef.h>

#include "nestcheck_adapter.h"

typedef struct walker walker;

/* Makes a walker over a state. Returns NULL and writes a reason to `message` (at most
   `message_size` bytes) if the state uses something this walker does not implement. */
walker *walker_create(const nestcheck_state *state, char *message, size_t message_size);

/* Frees a walker. */
void walker_destroy(walker *w);

/* The machine now: registers and nested configuration into *state (its array members left
   empty), and every nonzero word of memory through `word`, in no particular order. */
void walker_export(const walker *w, nestcheck_state *state,
                   void (*word)(void *context, uint64_t address, uint64_t value),
                   void *context);

/* Applies one operation. Returns NESTCHECK_OK or NESTCHECK_UNSUPPORTED. */
int walker_apply(walker *w, const nestcheck_operation *op, nestcheck_observation *out);

/* The adapter's description (its handshake line), shared by both front ends. */
extern const char walker_description[];

#endif /* WALKER_H */
