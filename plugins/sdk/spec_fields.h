/* Reading a task spec's fields in a plugin: the parsed view of spec_json and config_json,
 * typed getters that take a field's lowerCamel and snake_case names (proto3 JSON writes the
 * first, hand-written YAML often the second), unknown-key detection, and one error format,
 * "FIELD: PROBLEM" ("http.max_retries: must be a number from 0 to 100"), written into the
 * MUSTER_ERRBUF_SIZE buffer the agent hands validate() and start(). The agent's own spec
 * parser (agent/exec/spec.c) uses the same getters, so a field is named and refused alike on
 * both sides. Not part of the one-header SDK: a static helper on jansson linked into the
 * plugin (third-party plugins may copy it or keep to muster_plugin.h alone). */
#ifndef MUSTER_SPEC_FIELDS_H
#define MUSTER_SPEC_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the formatted message into errbuf (MUSTER_ERRBUF_SIZE bytes) and returns -EINVAL,
 * so a check reads `return muster_field_fail(errbuf, "%s: required", field);`. */
int muster_field_fail(char *errbuf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* obj's member `camel`, else `snake` (may be NULL): borrowed, NULL when absent, JSON null,
 * or when obj is not an object. */
json_t *muster_field_get(const json_t *obj, const char *camel, const char *snake);

/* The typed getters. Each reads muster_field_get(obj, camel, snake); absent (or null) returns
 * 0 and leaves *ret as it was, so callers set defaults first. A value of the wrong type or
 * range returns -EINVAL with "FIELD: PROBLEM" in errbuf, FIELD being the caller's `field`
 * (the name the user wrote the spec in, e.g. "http.max_retries"). */

/* A string, borrowed from obj (valid while obj is). "FIELD: must be a string"; a string with
 * a NUL byte inside: "FIELD: contains a NUL byte". "" is returned as "" (proto3 writes an
 * unset string as absent, but a user may write it). */
int muster_field_string(const json_t *obj, const char *camel, const char *snake, const char *field, const char **ret,
                        char *errbuf);

/* A whole number from lo to hi, as a JSON integer or a decimal string (proto3 writes 64-bit
 * integers as strings). "FIELD: must be a number from LO to HI". */
int muster_field_int(const json_t *obj, const char *camel, const char *snake, const char *field, int64_t lo, int64_t hi,
                     int64_t *ret, char *errbuf);

/* true or false (or the strings "true"/"false", as YAML hands scalars over).
 * "FIELD: must be true or false". */
int muster_field_bool(const json_t *obj, const char *camel, const char *snake, const char *field, bool *ret,
                      char *errbuf);

/* A duration string (muster_duration_parse) of at least min_ms, into milliseconds; "" is
 * absent. "FIELD: bad duration \"TEXT\" (e.g. \"5s\", \"500ms\")", or "FIELD: TEXT is below
 * the minimum of MIN ms". */
int muster_field_duration(const json_t *obj, const char *camel, const char *snake, const char *field, int64_t min_ms,
                          int64_t *ret_ms, char *errbuf);

/* A list of at most max entries, borrowed. "FIELD: must be a list" (+ " of OF" when `of` is
 * given: "must be a list of numbers"), "FIELD: more than MAX entries". */
int muster_field_list(const json_t *obj, const char *camel, const char *snake, const char *field, const char *of,
                      size_t max, json_t **ret, char *errbuf);

/* An object, borrowed. "FIELD: must be an object" (+ " of OF": "must be an object of strings"). */
int muster_field_object(const json_t *obj, const char *camel, const char *snake, const char *field, const char *of,
                        json_t **ret, char *errbuf);

/* Unknown-key detection: every key of obj must be one of known[0..n) (list both spellings
 * of a field). "SECTION.KEY: unknown field" for the first that is not. */
int muster_fields_check_known(const json_t *obj, const char *section, const char *const *known, size_t n, char *errbuf);

/* "1h30m", "2.5s", "500ms", "2d"; a bare number is seconds. Units ms, s, m, h, d; up to about
 * 31,000 years. 0 and *ret_ms, or -EINVAL. */
int muster_duration_parse(const char *text, int64_t *ret_ms);

/* The parsed view of what the agent hands a plugin: the whole TaskSpec (`spec`) and the type's
 * section (`config`), each parsed once, both objects, plus the spec's secrets list (borrowed
 * from spec; NULL when none). Errors, section being e.g. "http": "spec: bad JSON: WHY",
 * "SECTION: bad JSON: WHY", "SECTION: must be an object", "secrets: must be a list".
 * A NULL text reads as "{}". Close with muster_spec_view_close (also after a failed open). */
typedef struct muster_spec_view {
  json_t *spec;    /* owned */
  json_t *config;  /* owned */
  json_t *secrets; /* borrowed from spec, an array or NULL */
} muster_spec_view;

int muster_spec_view_open(const char *spec_json, const char *config_json, const char *section, muster_spec_view *ret,
                          char *errbuf);
void muster_spec_view_close(muster_spec_view *view);

#endif
