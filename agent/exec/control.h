/* The control protocol a task process speaks on fd 3 ($MUSTER_CONTROL=3): one command per
 * line, never on stdout.
 *   progress <percent> [message]     percent 0..100 (decimals allowed)
 *   param <key>=<value>              key [A-Za-z0-9_.-]{1,128}, value the rest of the line
 * Blank lines and lines starting with '#' are ignored. Anything else, an overlong line, or a
 * line past the count bound is reported as MU_CTL_BAD (a warning, never fatal). */
#ifndef MU_CONTROL_H
#define MU_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MU_CTL_KEY_MAX 128

typedef enum { MU_CTL_PROGRESS = 1, MU_CTL_PARAM, MU_CTL_BAD } mu_ctl_kind;

/* One parsed line. Strings point into the reader's buffer: valid during the callback only. */
typedef struct mu_ctl_line {
  mu_ctl_kind kind;
  double percent;
  const char *message; /* progress: "" when none */
  const char *key;     /* param */
  const char *value;   /* param */
  const char *error;   /* bad: why (static text), `text` holds the (cut) line */
  const char *text;
} mu_ctl_line;

typedef void (*mu_ctl_cb)(void *arg, const mu_ctl_line *line);

/* A line splitter with bounds. Embedded in its owner; init/free pair. */
typedef struct mu_ctl_reader {
  char *buf;
  size_t cap; /* max line length + 1 */
  size_t len;
  bool overlong; /* discarding the rest of an overlong line */
  uint32_t lines;
  uint32_t max_lines;
  bool gave_up;
} mu_ctl_reader;

int mu_ctl_reader_init(mu_ctl_reader *r, size_t max_line, uint32_t max_lines);
void mu_ctl_reader_free(mu_ctl_reader *r);
/* Feeds bytes; calls cb once per complete line. */
void mu_ctl_reader_feed(mu_ctl_reader *r, const char *data, size_t len, mu_ctl_cb cb, void *arg);
/* At EOF: a last line without newline still counts. */
void mu_ctl_reader_finish(mu_ctl_reader *r, mu_ctl_cb cb, void *arg);

/* Parses one line in place (line is NUL-terminated, no newline). */
void mu_ctl_parse_line(char *line, mu_ctl_line *ret);

/* True when key is a valid param key. */
bool mu_ctl_key_valid(const char *key);

#endif
