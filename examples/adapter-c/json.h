/*
 * json.h -- a small JSON reader for one line of the trace protocol: objects, arrays, strings,
 * numbers, true, false and null, parsed in place (strings are unescaped inside the line).
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum json_type {
  JSON_NULL,
  JSON_FALSE,
  JSON_TRUE,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT
} json_type;

typedef struct json_member json_member;

typedef struct json_value {
  json_type type;
  const char *text; /* JSON_STRING: the unescaped contents; JSON_NUMBER: the digits */
  size_t length;
  struct json_value *items; /* JSON_ARRAY */
  json_member *members;     /* JSON_OBJECT */
  size_t count;             /* items or members */
} json_value;

struct json_member {
  const char *key;
  size_t key_length;
  json_value value;
};

/* Parses `text` (modified in place; it must outlive the result). Returns 0 and fills *value,
   or -1 with a message in `error` (at most error_size bytes). */
int json_parse(char *text, json_value *value, char *error, size_t error_size);

/* Frees what json_parse allocated (not the text). */
void json_free(json_value *value);

/* The member named `key` of an object, or NULL. */
const json_value *json_get(const json_value *object, const char *key);

/* Whether a value is the string `s`. */
int json_is(const json_value *value, const char *s);

/* Reads a 64-bit unsigned number: a JSON integer, or a string holding "0x"-prefixed
   hexadecimal or decimal digits (underscores between digits allowed). Returns 0 on success. */
int json_word(const json_value *value, uint64_t *out);

#endif /* JSON_H */
