/*
 * json.c -- see json.h. A recursive-descent parser over a NUL-terminated line.
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
  char *p;
  const char *error;
  int depth;
} parser;

static int parse_value(parser *ps, json_value *value);

static void skip_space(parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n') ps->p++;
}

static int fail(parser *ps, const char *message) {
  if (ps->error == NULL) ps->error = message;
  return -1;
}

/* Appends to a growing array of `size`-byte elements; returns the new element. */
static void *grow(void **array, size_t *count, size_t *capacity, size_t size) {
  if (*count == *capacity) {
    size_t bigger = *capacity == 0 ? 8 : 2 * *capacity;
    void *moved = realloc(*array, bigger * size);
    if (moved == NULL) return NULL;
    *array = moved;
    *capacity = bigger;
  }
  char *element = (char *)*array + (*count)++ * size;
  memset(element, 0, size);
  return element;
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parses a string at ps->p (the opening quote), unescaping it in place. */
static int parse_string(parser *ps, const char **text, size_t *length) {
  char *in = ++ps->p;
  char *out = in;
  *text = in;
  for (;;) {
    char c = *in++;
    if (c == '"') break;
    if (c == '\0') return fail(ps, "unterminated string");
    if ((unsigned char)c < 0x20) return fail(ps, "control character in a string");
    if (c != '\\') {
      *out++ = c;
      continue;
    }
    char e = *in++;
    switch (e) {
    case '"': *out++ = '"'; break;
    case '\\': *out++ = '\\'; break;
    case '/': *out++ = '/'; break;
    case 'b': *out++ = '\b'; break;
    case 'f': *out++ = '\f'; break;
    case 'n': *out++ = '\n'; break;
    case 'r': *out++ = '\r'; break;
    case 't': *out++ = '\t'; break;
    case 'u': {
      int code = 0;
      for (int i = 0; i < 4; i++) {
        int d = hex_digit(in[i]);
        if (d < 0) return fail(ps, "bad \\u escape");
        code = code * 16 + d;
      }
      in += 4;
      *out++ = code < 0x80 ? (char)code : '?'; /* the protocol's strings are ASCII */
      break;
    }
    default: return fail(ps, "bad escape in a string");
    }
  }
  *length = (size_t)(out - *text);
  ps->p = in;
  return 0;
}

static int parse_object(parser *ps, json_value *value) {
  size_t capacity = 0;
  value->type = JSON_OBJECT;
  ps->p++;
  skip_space(ps);
  if (*ps->p == '}') {
    ps->p++;
    return 0;
  }
  for (;;) {
    skip_space(ps);
    if (*ps->p != '"') return fail(ps, "expected a member name");
    json_member *m = grow((void **)&value->members, &value->count, &capacity, sizeof *m);
    if (m == NULL) return fail(ps, "out of memory");
    if (parse_string(ps, &m->key, &m->key_length) != 0) return -1;
    skip_space(ps);
    if (*ps->p++ != ':') return fail(ps, "expected ':'");
    if (parse_value(ps, &m->value) != 0) return -1;
    skip_space(ps);
    if (*ps->p == ',') {
      ps->p++;
      continue;
    }
    if (*ps->p++ == '}') return 0;
    return fail(ps, "expected ',' or '}'");
  }
}

static int parse_array(parser *ps, json_value *value) {
  size_t capacity = 0;
  value->type = JSON_ARRAY;
  ps->p++;
  skip_space(ps);
  if (*ps->p == ']') {
    ps->p++;
    return 0;
  }
  for (;;) {
    json_value *item = grow((void **)&value->items, &value->count, &capacity, sizeof *item);
    if (item == NULL) return fail(ps, "out of memory");
    if (parse_value(ps, item) != 0) return -1;
    skip_space(ps);
    if (*ps->p == ',') {
      ps->p++;
      continue;
    }
    if (*ps->p++ == ']') return 0;
    return fail(ps, "expected ',' or ']'");
  }
}

static int parse_literal(parser *ps, const char *word, json_type type, json_value *value) {
  size_t n = strlen(word);
  if (strncmp(ps->p, word, n) != 0) return fail(ps, "unexpected character");
  ps->p += n;
  value->type = type;
  return 0;
}

static int parse_value(parser *ps, json_value *value) {
  memset(value, 0, sizeof *value);
  if (++ps->depth > 64) return fail(ps, "nesting too deep");
  skip_space(ps);
  int result;
  switch (*ps->p) {
  case '{': result = parse_object(ps, value); break;
  case '[': result = parse_array(ps, value); break;
  case '"':
    value->type = JSON_STRING;
    result = parse_string(ps, &value->text, &value->length);
    break;
  case 't': result = parse_literal(ps, "true", JSON_TRUE, value); break;
  case 'f': result = parse_literal(ps, "false", JSON_FALSE, value); break;
  case 'n': result = parse_literal(ps, "null", JSON_NULL, value); break;
  default:
    if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
      value->type = JSON_NUMBER;
      value->text = ps->p;
      while (strchr("+-.eE0123456789", *ps->p) != NULL && *ps->p != '\0') ps->p++;
      value->length = (size_t)(ps->p - value->text);
      result = 0;
    } else {
      result = fail(ps, *ps->p == '\0' ? "unexpected end of line" : "unexpected character");
    }
  }
  ps->depth--;
  return result;
}

int json_parse(char *text, json_value *value, char *error, size_t error_size) {
  parser ps = {text, NULL, 0};
  int result = parse_value(&ps, value);
  if (result == 0) {
    skip_space(&ps);
    if (*ps.p != '\0') result = fail(&ps, "unexpected text after the value");
  }
  if (result != 0) {
    snprintf(error, error_size, "%s at column %ld", ps.error, (long)(ps.p - text) + 1);
    json_free(value);
  }
  return result;
}

void json_free(json_value *value) {
  if (value->type == JSON_ARRAY) {
    for (size_t i = 0; i < value->count; i++) json_free(&value->items[i]);
    free(value->items);
  } else if (value->type == JSON_OBJECT) {
    for (size_t i = 0; i < value->count; i++) json_free(&value->members[i].value);
    free(value->members);
  }
  memset(value, 0, sizeof *value);
}

const json_value *json_get(const json_value *object, const char *key) {
  if (object == NULL || object->type != JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < object->count; i++) {
    const json_member *m = &object->members[i];
    if (m->key_length == n && memcmp(m->key, key, n) == 0) return &m->value;
  }
  return NULL;
}

int json_is(const json_value *value, const char *s) {
  return value != NULL && value->type == JSON_STRING && value->length == strlen(s) &&
         memcmp(value->text, s, value->length) == 0;
}

int json_word(const json_value *value, uint64_t *out) {
  if (value == NULL || (value->type != JSON_STRING && value->type != JSON_NUMBER)) return -1;
  const char *p = value->text;
  const char *end = p + value->length;
  unsigned base = 10;
  if (value->type == JSON_STRING && end - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  }
  if (p == end) return -1;
  uint64_t result = 0;
  int digits = 0;
  for (; p < end; p++) {
    if (*p == '_' && value->type == JSON_STRING && digits > 0 && p + 1 < end) continue;
    int d = hex_digit(*p);
    if (d < 0 || (unsigned)d >= base) return -1;
    if (result > (UINT64_MAX - (uint64_t)d) / base) return -1; /* wider than 64 bits */
    result = result * base + (uint64_t)d;
    digits++;
  }
  *out = result;
  return 0;
}
