/*
 * adapter_library.c -- the walker as a shared library exporting nestcheck's C ABI
 * (adapters/include/nestcheck_adapter.h). nestcheck loads it with dlopen:
 * --target library:./libwalker-adapter.so
 */
#include <stdio.h>

#include "walker.h"

uint64_t nestcheck_adapter_abi_version(void) { return NESTCHECK_ADAPTER_ABI_VERSION; }

const char *nestcheck_adapter_describe(void) { return walker_description; }

int nestcheck_adapter_create(const nestcheck_state *state, void **instance, char *message,
                             size_t message_size) {
  if (state->abi_version != NESTCHECK_ADAPTER_ABI_VERSION) {
    snprintf(message, message_size, "state of ABI version %llu, expected %u",
             (unsigned long long)state->abi_version, NESTCHECK_ADAPTER_ABI_VERSION);
    return NESTCHECK_FAILED;
  }
  walker *w = walker_create(state, message, message_size);
  *instance = w;
  return w == NULL ? NESTCHECK_UNSUPPORTED : NESTCHECK_OK;
}

void nestcheck_adapter_destroy(void *instance) { walker_destroy(instance); }

int nestcheck_adapter_export(void *instance, nestcheck_state *state,
                             void (*word)(void *context, uint64_t address, uint64_t value),
                             void *context) {
  walker_export(instance, state, word, context);
  return NESTCHECK_OK;
}

int nestcheck_adapter_apply(void *instance, const nestcheck_operation *operation,
                            nestcheck_observation *observation) {
  return walker_apply(instance, operation, observation);
}
