#ifndef NESTCHECK_CZ3_SHIM_H
#define NESTCHECK_CZ3_SHIM_H
#include <z3.h>
#endif
