/* Evaluating an image's facts against a policy (imagepolicy.h): every rule is checked, every
 * violation kept with its rule's name and a message that says what the image had and what
 * the policy allows. Missing facts (no signature check, no scan) are violations of the rules
 * that need them, never silent passes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/imagepolicy/imagepolicy_int.h"

static const char *s(const char *v) { return v != NULL ? v : ""; }

static void add(mu_imgpolicy_result *res, const char *rule, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(mu_imgpolicy_result *res, const char *rule, const char *fmt, ...) {
  if (res->n >= MU_IMGPOLICY_MAX_VIOLATIONS) {
    res->dropped++;
    return;
  }
  mu_imgpolicy_violation *v = &res->v[res->n++];
  snprintf(v->rule, sizeof v->rule, "%s", rule);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->msg, sizeof v->msg, fmt, ap);
  va_end(ap);
}

/* "a, b, c" of a list, cut to cap. */
static void join(const mu_imgpolicy_list *l, char *buf, size_t cap) {
  size_t off = 0;
  buf[0] = '\0';
  if (l->n == 0) snprintf(buf, cap, "none");
  for (size_t i = 0; i < l->n && off + 1 < cap; i++) {
    int n = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", l->items[i]);
    if (n < 0) break;
    off += (size_t)n;
  }
}

static bool any_match(const mu_imgpolicy_list *l, const char *text) {
  for (size_t i = 0; i < l->n; i++)
    if (mu_imgpolicy_glob_match(l->items[i], text)) return true;
  return false;
}

static void human_size(uint64_t b, char *buf, size_t cap) {
  if (b >= (1ull << 30)) snprintf(buf, cap, "%.1f GiB", (double)b / (1ull << 30));
  else if (b >= (1ull << 20)) snprintf(buf, cap, "%.1f MiB", (double)b / (1ull << 20));
  else if (b >= 1024) snprintf(buf, cap, "%.1f KiB", (double)b / 1024);
  else snprintf(buf, cap, "%llu bytes", (unsigned long long)b);
}

/* "", "root", "0", "root:x", "0:x" */
static bool is_root(const char *user) {
  if (user[0] == '\0') return true;
  size_t n = strcspn(user, ":");
  return (n == 4 && strncmp(user, "root", 4) == 0) || (n == 1 && user[0] == '0');
}

static void check_signature(const mu_imgpolicy *p, const mu_imgfacts *f, mu_imgpolicy_result *res) {
  if (!p->require_signed) return;
  const char *detail = s(f->signature_detail), *sep = detail[0] ? ": " : "";
  const char *what = f->manifest_digest && f->manifest_digest[0] ? f->manifest_digest : "the image";
  switch (f->signature) {
    case MU_IMGSIG_VALID: return;
    case MU_IMGSIG_NOT_CHECKED:
      add(res, "require_signed", "signature not checked: nothing verified the signature of %s%s%s", what, sep, detail);
      return;
    case MU_IMGSIG_MISSING: add(res, "require_signed", "no signature for %s%s%s", what, sep, detail); return;
    case MU_IMGSIG_INVALID: add(res, "require_signed", "the signature of %s is invalid%s%s", what, sep, detail); return;
    case MU_IMGSIG_UNTRUSTED:
      add(res, "require_signed", "%s is signed by an untrusted key%s%s", what, sep, detail);
      return;
    case MU_IMGSIG_EXPIRED:
      add(res, "require_signed", "the signature of %s has expired%s%s", what, sep, detail);
      return;
  }
  add(res, "require_signed", "unknown signature status %d", (int)f->signature);
}

static void check_scan(const mu_imgpolicy *p, const mu_imgfacts *f, mu_imgpolicy_result *res) {
  if (!p->severity_set) return;
  if (f->scan == NULL) {
    add(res, "max_severity", "no scan available for this image (the policy allows unfixed findings up to %s)",
        mu_severity_name(p->max_severity));
    return;
  }
  for (int sev = MU_SEV_CRITICAL; sev > (int)p->max_severity; sev--) {
    uint32_t n = f->scan->unfixed[sev];
    if (n == 0) continue;
    uint32_t oldest = f->scan->oldest_days[sev];
    if (p->grace_set && oldest < p->grace_days) continue; /* all of them newer than the grace */
    if (p->grace_set)
      add(res, "max_severity",
          "%u unfixed %s finding%s, the oldest published %u days ago (the policy allows up to %s, or newer than %u "
          "days)",
          n, mu_severity_name((mu_severity)sev), n == 1 ? "" : "s", oldest, mu_severity_name(p->max_severity),
          p->grace_days);
    else
      add(res, "max_severity", "%u unfixed %s finding%s (the policy allows up to %s)", n,
          mu_severity_name((mu_severity)sev), n == 1 ? "" : "s", mu_severity_name(p->max_severity));
  }
}

size_t mu_imgpolicy_eval(const mu_imgpolicy *p, const mu_imgfacts *f, mu_imgpolicy_result *res) {
  size_t before = res->n + res->dropped;
  char buf[MU_IMGPOLICY_MSG_MAX], a[32], b[32];
  if (p->registries.set) {
    char name[1024];
    snprintf(name, sizeof name, "%s/%s", s(f->registry), s(f->repository));
    if (!any_match(&p->registries, name)) {
      join(&p->registries, buf, 300);
      add(res, "registries", "%s is not an allowed registry/repository (allowed: %s)", name, buf);
    }
  }
  if (p->digests_only && s(f->digest)[0] == '\0')
    add(res, "digests_only", "the image is named by tag \"%s\", not by digest (use REPOSITORY@sha256:...)",
        s(f->tag)[0] ? f->tag : "latest");
  check_signature(p, f, res);
  check_scan(p, f, res);
  if (!p->allow_root_user) {
    const char *run = s(f->run_user);
    if (run[0] != '\0' && is_root(run)) add(res, "allow_root_user", "the task asks to run as root (user \"%s\")", run);
    else if (run[0] == '\0' && !f->config_known)
      add(res, "allow_root_user", "the image's user is not known (its config was not read) and the task sets none");
    else if (run[0] == '\0' && is_root(s(f->config_user)))
      add(res, "allow_root_user", "the image's user is root (config User \"%s\") and the task sets no other user",
          s(f->config_user));
  }
  if (!p->allow_host_network && f->network != NULL && strcmp(f->network, "host") == 0)
    add(res, "allow_host_network", "the task asks for network host");
  if (p->volumes.set) {
    join(&p->volumes, buf, 300);
    for (size_t i = 0; i < f->n_volumes; i++) {
      const char *v = s(f->volumes[i]);
      if (strstr(v, "/..") != NULL || strstr(v, "/./") != NULL || v[0] != '/')
        add(res, "allowed_volumes", "host path \"%s\" is not a plain absolute path", v);
      else if (!any_match(&p->volumes, v))
        add(res, "allowed_volumes", "host path %s is not allowed (allowed: %s)", v, buf);
    }
  }
  if (p->max_image_size > 0) {
    human_size(p->max_image_size, b, sizeof b);
    if (f->compressed_bytes > p->max_image_size) {
      human_size(f->compressed_bytes, a, sizeof a);
      add(res, "max_image_size", "the image is %s compressed, over the %s allowed", a, b);
    } else if (f->uncompressed_bytes > p->max_image_size) {
      human_size(f->uncompressed_bytes, a, sizeof a);
      add(res, "max_image_size", "the image is %s unpacked, over the %s allowed", a, b);
    } else if (f->compressed_bytes == 0 && f->uncompressed_bytes == 0) {
      add(res, "max_image_size", "the image's size is not known (the policy allows at most %s)", b);
    }
  }
  return res->n + res->dropped - before;
}

bool mu_imgpolicy_wants_signature(const mu_imgpolicy *p, const char *const **ret_keys) {
  static const char *const none[] = {NULL};
  if (ret_keys != NULL) *ret_keys = p->trusted_keys.items ? (const char *const *)p->trusted_keys.items : none;
  return p->require_signed;
}

bool mu_imgpolicy_wants_scan(const mu_imgpolicy *p) { return p->severity_set; }

void mu_imgpolicy_result_format(const mu_imgpolicy_result *res, char *buf, size_t cap) {
  size_t off = 0;
  if (cap == 0) return;
  buf[0] = '\0';
  for (size_t i = 0; i < res->n; i++) {
    int n = snprintf(buf + off, cap - off, "%s%s: %s", i ? "; " : "", res->v[i].rule, res->v[i].msg);
    if (n < 0 || (size_t)n >= cap - off) {
      if (cap > 4) snprintf(buf + cap - 4, 4, "...");
      return;
    }
    off += (size_t)n;
  }
  if (res->dropped > 0) snprintf(buf + off, cap - off, "; and %zu more", res->dropped);
}
