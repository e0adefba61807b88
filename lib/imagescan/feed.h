/* The offline vulnerability feed: OSV records imported into an index a scan can search fast.
 *
 * On disk (a feed directory):
 *   current -> v-<16 hex>   the version in use, swapped atomically by an update
 *   v-<16 hex>/index.tsv    the index lines of osv.h, sorted (ecosystem, name, id, ...)
 *   v-<16 hex>/feed.json    {"version": "sha256:<hex of index.tsv>", "records": N, "entries": M, "updatedAt": T}
 *   .lock                   flock'd by an update
 * An update builds the new version beside the old one and swaps `current` last, so a refused
 * or interrupted update leaves the feed as it was, and a scan reading the old version while
 * it happens keeps reading a whole one.
 *
 * Bounds (mu_feed_limits): a record file over max_record_bytes is refused naming the file;
 * more than max_records records (old and new together) or max_files files refuse the whole
 * update naming the file where the bound was crossed. */
#ifndef MU_IMAGESCAN_FEED_H
#define MU_IMAGESCAN_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/imagescan/version.h"

typedef struct mu_feed_limits {
  uint64_t max_record_bytes; /* one record file; 0 = 1 MiB */
  size_t max_records;        /* records in the feed; 0 = 1,000,000 */
  size_t max_files;          /* files one update reads; 0 = 2,000,000 */
  uint64_t max_index_bytes;  /* the index a scan loads; 0 = 2 GiB */
} mu_feed_limits;

typedef struct mu_feed_report {
  size_t files;            /* record files read */
  size_t records;          /* accepted */
  size_t lines;            /* index lines they gave */
  size_t refused;          /* bad records (each told to on_refused) */
  size_t withdrawn;        /* withdrawn records (their older lines removed) */
  size_t skipped_eco;      /* affected entries of unsupported ecosystems */
  size_t versions_dropped; /* listed versions not valid in their scheme, left out */
  /* Called once per refused record with "FILE: why" (may be NULL). */
  void (*on_refused)(void *arg, const char *msg);
  void *arg;
} mu_feed_report;

/* A loaded feed: the index in memory, read-only. */
typedef struct mu_feed {
  char *data; /* the lines, each '\n' made '\0' */
  size_t len;
  char **lines; /* sorted */
  size_t n_lines;
  size_t records;
  size_t longest;   /* the longest line's length */
  char version[72]; /* "sha256:<hex>" of the index text */
} mu_feed;

/* One index line split into its fields (pointers into scratch, see mu_feed_entry_parse). */
typedef struct mu_feed_entry {
  const char *ecosystem, *name, *id, *severity, *published, *aliases, *ranges, *versions;
} mu_feed_entry;

/* Reads OSV records from src (a .json file or a directory, searched up to 4 levels deep for
 * *.json) and merges them into base (NULL = empty): a record replaces base's lines of the
 * same id, a withdrawn one removes them. strict: any refused record fails the whole build
 * (MU_EINVAL naming the first). *ret is new (mu_feed_free). */
int mu_feed_build(const char *src, const mu_feed *base, const mu_feed_limits *limits, bool strict,
                  mu_feed_report *report, mu_feed **ret, mu_err *err);

/* Writes f as the new current version of the feed directory dir (created if missing). */
int mu_feed_save(const mu_feed *f, const char *dir, mu_err *err);

/* Loads dir's current version. MU_ENOENT when dir has none (not an imported feed). */
int mu_feed_load(const char *dir, const mu_feed_limits *limits, mu_feed **ret, mu_err *err);

/* The version (feed.json's) of dir's current version into out, without loading the index
 * (a cached scan needs no more). MU_ENOENT when there is none. */
int mu_feed_current_version(const char *dir, char out[72], mu_err *err);

/* An empty feed (no records, version "none"), for scans without one. */
mu_feed *mu_feed_empty(void);

void mu_feed_free(mu_feed *f);

/* The lines of f for (ecosystem, name): [*ret_first, *ret_first + count). */
size_t mu_feed_lookup(const mu_feed *f, const char *ecosystem, const char *name, size_t *ret_first);

/* Splits a line into e, using scratch (at least strlen(line) + 1 bytes). False when the line
 * does not have the 8 fields. */
bool mu_feed_entry_parse(const char *line, char *scratch, mu_feed_entry *e);

#endif
