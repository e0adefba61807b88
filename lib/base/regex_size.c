/* The expansion estimate of regex_size.h: one pass over the pattern with a stack of open
 * groups. Each level keeps the units counted so far and the weight of its last atom, so a
 * repetition that follows can multiply that atom. Arithmetic saturates at the budget. */
#include "regex_size.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct level {
  size_t sum;  /* units of this group's finished atoms, all branches */
  size_t last; /* weight of the atom a repetition would apply to (0: none yet) */
} level;

static size_t sat_add(size_t a, size_t b, size_t lim) { return a > lim || b > lim - a ? lim + 1 : a + b; }
static size_t sat_mul(size_t a, size_t b, size_t lim) { return b != 0 && a > lim / b ? lim + 1 : a * b; }

/* Closes the last atom of l: adds it to the sum. */
static void settle(level *l, size_t lim) {
  l->sum = sat_add(l->sum, l->last, lim);
  l->last = 0;
}

/* Skips a bracket expression starting at p ('['); returns the byte after its ']' (or the end). */
static const char *skip_bracket(const char *p) {
  p++;
  if (*p == '^') p++;
  if (*p == ']') p++; /* a leading ']' is a member */
  while (*p && *p != ']') {
    if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
      char close = p[1];
      p += 2;
      while (*p && !(p[0] == close && p[1] == ']')) p++;
      if (*p) p += 2;
    } else {
      p++;
    }
  }
  return *p ? p + 1 : p;
}

/* Reads "{m}", "{m,}" or "{m,n}" at p; returns the multiplier (max bound + 1, saturated) and
 * sets *end, or 0 when p does not start a valid interval (regcomp then decides). */
static size_t interval(const char *p, const char **end, size_t lim) {
  char *e;
  unsigned long m = strtoul(p + 1, &e, 10), n = m;
  if (e == p + 1) return 0;
  if (*e == ',') {
    const char *q = e + 1;
    if (*q == '}') {
      n = m; /* open-ended: glibc makes m copies and a star */
      e = (char *)q;
    } else {
      n = strtoul(q, &e, 10);
      if (e == q) return 0;
    }
  }
  if (*e != '}') return 0;
  *end = e + 1;
  unsigned long k = n > m ? n : m;
  return k >= lim ? lim + 1 : (size_t)k + 1;
}

int mu_regex_check_size(const char *pattern, size_t max_units, char *why, size_t cap) {
  level stack[MU_REGEX_MAX_DEPTH + 1] = {{0, 0}};
  size_t depth = 0;
  const char *p = pattern;
  while (*p) {
    level *l = &stack[depth];
    switch (*p) {
      case '(':
        if (depth == MU_REGEX_MAX_DEPTH) {
          snprintf(why, cap, "groups nested more than %d deep", MU_REGEX_MAX_DEPTH);
          return -1;
        }
        settle(l, max_units);
        stack[++depth] = (level){0, 0};
        p++;
        break;
      case ')':
        if (depth == 0) { /* a lone ')' is an ordinary character in ERE */
          settle(l, max_units);
          l->last = 1;
          p++;
          break;
        }
        settle(l, max_units);
        depth--;
        stack[depth].last = stack[depth + 1].sum > 0 ? stack[depth + 1].sum : 1;
        p++;
        break;
      case '|':
      case '^':
      case '$':
        settle(l, max_units);
        p++;
        break;
      case '*':
      case '?': p++; break;
      case '+':
        l->last = sat_mul(l->last, 2, max_units);
        p++;
        break;
      case '{': {
        const char *end = NULL;
        size_t k = interval(p, &end, max_units);
        if (k == 0) { /* not an interval: a literal '{' */
          settle(l, max_units);
          l->last = 1;
          p++;
        } else {
          l->last = sat_mul(l->last ? l->last : 1, k, max_units);
          p = end;
        }
        break;
      }
      case '[':
        settle(l, max_units);
        l->last = 1;
        p = skip_bracket(p);
        break;
      case '\\':
        settle(l, max_units);
        l->last = 1;
        p += p[1] ? 2 : 1;
        break;
      default:
        settle(l, max_units);
        l->last = 1;
        p++;
        break;
    }
    if (stack[depth].sum > max_units || stack[depth].last > max_units) break;
  }
  /* Close any groups left open (regcomp reports those) so the total is counted. */
  while (depth > 0) {
    settle(&stack[depth], max_units);
    stack[depth - 1].sum = sat_add(stack[depth - 1].sum, stack[depth].sum, max_units);
    depth--;
  }
  settle(&stack[0], max_units);
  if (stack[0].sum > max_units) {
    snprintf(why, cap, "too large once its repetitions are expanded (over %zu units; nested {m,n} bounds multiply)",
             max_units);
    return -1;
  }
  return 0;
}
