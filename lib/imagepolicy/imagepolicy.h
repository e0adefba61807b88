/* Image admission policy (docs/images.md#admission-policy): a strict YAML or JSON document
 * (allowed registries/repositories, digests only, signatures, the worst scan finding allowed,
 * root user, host network, host volumes, image size), its canonical JSON form (what etcd keeps
 * and agents are sent), and the evaluation of one image's facts against it, which returns
 * EVERY violation, each named by its rule. No globals, and no I/O but mu_imgpolicy_read_file:
 * the agent, its container helper, musterd and the CLI call the same code.
 *
 * Facts a caller cannot know yet are said so (signature MU_IMGSIG_NOT_CHECKED, scan NULL): a
 * policy that needs them refuses, saying what was missing, never allows by default. */
#ifndef MU_IMAGEPOLICY_H
#define MU_IMAGEPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_IMGPOLICY_MAX_BYTES (64 * 1024) /* a policy document's size bound */
#define MU_IMGPOLICY_MAX_LIST 64           /* entries per list (globs, keys) */
#define MU_IMGPOLICY_MAX_PATTERN 256       /* bytes per glob or key */
#define MU_IMGPOLICY_MAX_VIOLATIONS 96     /* 8 rules, allowed_volumes once per volume */
#define MU_IMGPOLICY_MSG_MAX 640

typedef enum { MU_SEV_UNKNOWN = 0, MU_SEV_LOW, MU_SEV_MEDIUM, MU_SEV_HIGH, MU_SEV_CRITICAL, MU_SEV_COUNT } mu_severity;

/* "UNKNOWN", "LOW", ...; NULL out of range. */
const char *mu_severity_name(mu_severity s);
/* Case-insensitive; 0, or MU_EINVAL. */
int mu_severity_parse(const char *s, mu_severity *ret);

/* What signature verification found (plugins/container imagesig fills it when wired). */
typedef enum {
  MU_IMGSIG_NOT_CHECKED = 0, /* nobody verified: the default until verification is wired */
  MU_IMGSIG_VALID,
  MU_IMGSIG_MISSING,
  MU_IMGSIG_INVALID,
  MU_IMGSIG_UNTRUSTED,
  MU_IMGSIG_EXPIRED,
} mu_imgsig_status;

const char *mu_imgsig_status_name(mu_imgsig_status s); /* "not_checked", "valid", ... */
int mu_imgsig_status_parse(const char *s, mu_imgsig_status *ret);

/* A scan's summary (lib/imagescan/summary.h fills it): unfixed findings by severity, and the
 * age in days of the oldest published one of each severity. */
typedef struct mu_imgscan_summary {
  uint32_t unfixed[MU_SEV_COUNT];
  uint32_t oldest_days[MU_SEV_COUNT];
} mu_imgscan_summary;

/* One image about to run, as far as it is known. Strings are borrowed; NULL means "". */
typedef struct mu_imgfacts {
  const char *registry;        /* "host[:port]" */
  const char *repository;      /* "team/app" */
  const char *tag;             /* "" when the reference has only a digest */
  const char *digest;          /* the reference's own "sha256:..." pin, "" when by tag */
  const char *manifest_digest; /* what it resolved to, for messages ("" unknown) */
  bool config_known;           /* the image config was read (config_user is meaningful) */
  const char *config_user;     /* the image config's User ("" = root) */
  const char *run_user;        /* the task's user override; NULL or "" = the image's */
  uint64_t compressed_bytes;   /* config + layers as the manifest gives them; 0 unknown */
  uint64_t uncompressed_bytes; /* unpacked; 0 unknown (checked when known) */
  const char *network;         /* "none" / "host"; NULL = none */
  const char *const *volumes;  /* host paths the task mounts */
  size_t n_volumes;
  mu_imgsig_status signature;
  const char *signature_detail;   /* optional: the key id, the expiry, the reason */
  const mu_imgscan_summary *scan; /* NULL: no scan available */
} mu_imgfacts;

typedef struct mu_imgpolicy mu_imgpolicy;

/* Parses a policy document (YAML, or JSON, which is YAML too), named `name` in messages.
 * Strict: an unknown key, a wrong type, a bad glob, a bad severity or size is MU_EINVAL with
 * "NAME:LINE: field 'KEY': ..."; an empty document is a policy that allows everything. On
 * success *ret is the caller's (mu_imgpolicy_free). */
int mu_imgpolicy_parse(const char *name, const char *text, size_t len, mu_imgpolicy **ret, mu_err *err);
void mu_imgpolicy_free(mu_imgpolicy *p);

/* A policy file's text ("-" = stdin), at most MU_IMGPOLICY_MAX_BYTES: *ret_text is the
 * caller's (free), NUL-terminated. MU_ENOENT (missing), MU_EIO, MU_ENOSPC, naming the file.
 * mu_imgpolicy_load reads and parses it (errors "FILE:LINE: ..."). */
int mu_imgpolicy_read_file(const char *path, char **ret_text, size_t *ret_len, mu_err *err);
int mu_imgpolicy_load(const char *path, mu_imgpolicy **ret, mu_err *err);

/* The canonical JSON of p (keys sorted, every rule present); parsing it gives the same policy.
 * Caller frees. NULL when out of memory. */
char *mu_imgpolicy_to_json(const mu_imgpolicy *p);

/* True when p sets no rule at all. */
bool mu_imgpolicy_is_empty(const mu_imgpolicy *p);

/* What a caller must find out before evaluating (so that verification and scanning run only
 * when a policy asks): signatures (and the keys trusted for them: *ret_keys borrowed from p,
 * NULL-terminated, may be empty = the verifier's own trusted keys), a scan. */
bool mu_imgpolicy_wants_signature(const mu_imgpolicy *p, const char *const **ret_keys);
bool mu_imgpolicy_wants_scan(const mu_imgpolicy *p);

typedef struct mu_imgpolicy_violation {
  char rule[24]; /* the policy key: "registries", "digests_only", ... */
  char msg[MU_IMGPOLICY_MSG_MAX];
} mu_imgpolicy_violation;

typedef struct mu_imgpolicy_result {
  size_t n;
  size_t dropped; /* past MU_IMGPOLICY_MAX_VIOLATIONS (counted, not kept) */
  mu_imgpolicy_violation v[MU_IMGPOLICY_MAX_VIOLATIONS];
} mu_imgpolicy_result;

/* Appends to *res every violation of f against p (res is not cleared: call it once per policy
 * that applies, the agent's and the cluster's). Returns the number appended. */
size_t mu_imgpolicy_eval(const mu_imgpolicy *p, const mu_imgfacts *f, mu_imgpolicy_result *res);

/* The violations joined as "RULE: MSG; RULE: MSG" into buf (truncated with "..." to cap). */
void mu_imgpolicy_result_format(const mu_imgpolicy_result *res, char *buf, size_t cap);

/* The glob language of the policy: '*' any run of characters but '/', '**' any run including
 * '/' (DIR followed by a final slash-star-star also matches DIR itself), '?' one character
 * but '/', [abc] [a-z] [!a] a class. mu_imgpolicy_glob_check: 0, or MU_EINVAL naming the
 * problem (empty, unterminated class, '***', a control character). */
int mu_imgpolicy_glob_check(const char *pattern, mu_err *err);
bool mu_imgpolicy_glob_match(const char *pattern, const char *text);

#endif
