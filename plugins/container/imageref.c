/* Image reference parsing (see imageref.h). */
#include "plugins/container/imageref.h"

#include <stdio.h>
#include <string.h>

#include "plugins/container/manifest.h"

/* Here, not in manifest.c, so that a program with lib/bundle's own mu_manifest_parse (the CLI)
 * can link the registry client, which needs only this and the reference grammar. */
void mu_sha256_format(const unsigned char h[32], char out[72]) {
  static const char hex[] = "0123456789abcdef";
  memcpy(out, "sha256:", 7);
  for (int i = 0; i < 32; i++) {
    out[7 + 2 * i] = hex[h[i] >> 4];
    out[8 + 2 * i] = hex[h[i] & 15];
  }
  out[71] = '\0';
}

static bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool mu_digest_valid(const char *s) {
  if (s == NULL || strncmp(s, "sha256:", 7) != 0) return false;
  s += 7;
  size_t n = 0;
  for (; s[n] != '\0'; n++)
    if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return false;
  return n == MU_DIGEST_HEX;
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t len) {
  if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1])) return false;
  for (size_t i = 1; i < len;) {
    if (is_lower_alnum(s[i])) {
      i++;
      continue;
    }
    size_t j = i;
    if (s[i] == '.') j = i + 1;
    else if (s[i] == '_') j = (i + 1 < len && s[i + 1] == '_') ? i + 2 : i + 1;
    else if (s[i] == '-')
      while (j < len && s[j] == '-') j++;
    else return false;
    if (j >= len || !is_lower_alnum(s[j])) return false;
    i = j;
  }
  return true;
}

static bool repository_valid(const char *s) {
  const char *p = s;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (!component_valid(p, len)) return false;
    if (slash == NULL) return true;
    p = slash + 1;
  }
}

/* host[:port]: DNS labels of [A-Za-z0-9-] joined by '.', or a bracketed IPv6 literal. */
static bool registry_valid(const char *s) {
  const char *colon = NULL;
  size_t hostlen;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close == s + 1) return false;
    for (const char *p = s + 1; p < close; p++)
      if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == ':'))
        return false;
    if (close[1] != '\0' && close[1] != ':') return false;
    colon = close[1] == ':' ? close + 1 : NULL;
    hostlen = 0;
  } else {
    colon = strchr(s, ':');
    hostlen = colon ? (size_t)(colon - s) : strlen(s);
    if (hostlen == 0) return false;
    bool label_start = true;
    for (size_t i = 0; i < hostlen; i++) {
      char c = s[i];
      if (c == '.') {
        if (label_start || s[i - 1] == '-') return false;
        label_start = true;
        continue;
      }
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && !(c == '-' && !label_start)) return false;
      label_start = false;
    }
    if (label_start || s[hostlen - 1] == '-') return false;
  }
  if (colon != NULL) {
    const char *port = colon + 1;
    size_t n = strlen(port);
    if (n == 0 || n > 5) return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
      if (port[i] < '0' || port[i] > '9') return false;
      v = v * 10 + (port[i] - '0');
    }
    if (v == 0 || v > 65535) return false;
  }
  return true;
}

static bool tag_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > MU_IMGREF_TAG_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

int mu_imgref_parse(const char *text, const char *default_registry, mu_imgref *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (text == NULL || *text == '\0') return mu_err_set(err, MU_EINVAL, "image: empty reference");
  size_t len = strlen(text);
  if (len > MU_IMGREF_MAX) return mu_err_set(err, MU_EINVAL, "image: reference longer than %d bytes", MU_IMGREF_MAX);
  char buf[MU_IMGREF_MAX + 1];
  memcpy(buf, text, len + 1);

  char *at = strchr(buf, '@');
  if (at != NULL) {
    *at = '\0';
    if (!mu_digest_valid(at + 1))
      return mu_err_set(err, MU_EINVAL, "image \"%s\": the digest must be sha256: and 64 lowercase hex digits", text);
    snprintf(ret->digest, sizeof ret->digest, "%s", at + 1);
  }
  /* The tag is after the last ':' that follows the last '/'. */
  char *slash = strrchr(buf, '/');
  char *colon = strrchr(slash ? slash : buf, ':');
  if (colon != NULL) {
    *colon = '\0';
    if (!tag_valid(colon + 1))
      return mu_err_set(err, MU_EINVAL, "image \"%s\": bad tag \"%s\" ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", text,
                        colon + 1);
    snprintf(ret->tag, sizeof ret->tag, "%s", colon + 1);
  }
  if (buf[0] == '\0') return mu_err_set(err, MU_EINVAL, "image \"%s\": no repository name", text);

  const char *name = buf;
  char *first = strchr(buf, '/');
  bool has_registry = false;
  if (first != NULL) {
    *first = '\0';
    has_registry =
        strchr(buf, '.') != NULL || strchr(buf, ':') != NULL || strcmp(buf, "localhost") == 0 || buf[0] == '[';
    if (has_registry) {
      if (!registry_valid(buf)) return mu_err_set(err, MU_EINVAL, "image \"%s\": bad registry \"%s\"", text, buf);
      snprintf(ret->registry, sizeof ret->registry, "%s", buf);
      name = first + 1;
    } else {
      *first = '/';
    }
  }
  if (!has_registry) {
    if (default_registry == NULL || *default_registry == '\0')
      return mu_err_set(err, MU_EINVAL,
                        "image \"%s\": short names are refused; name the registry (\"registry.example.com/%s\") "
                        "or configure a default registry on the agent",
                        text, buf);
    if (!registry_valid(default_registry))
      return mu_err_set(err, MU_EINVAL, "image \"%s\": bad default registry \"%s\"", text, default_registry);
    snprintf(ret->registry, sizeof ret->registry, "%s", default_registry);
  }
  if (!repository_valid(name))
    return mu_err_set(err, MU_EINVAL,
                      "image \"%s\": bad repository \"%s\" (lowercase [a-z0-9] components joined by . _ __ - and /)",
                      text, name);
  const char *prefix =
      (!has_registry && strcmp(ret->registry, "docker.io") == 0 && strchr(name, '/') == NULL) ? "library/" : "";
  int n = snprintf(ret->repository, sizeof ret->repository, "%s%s", prefix, name);
  if (n < 0 || (size_t)n >= sizeof ret->repository || strlen(ret->registry) + 1 + (size_t)n > MU_IMGREF_NAME_MAX)
    return mu_err_set(err, MU_EINVAL, "image \"%s\": name longer than %d bytes", text, MU_IMGREF_NAME_MAX);
  if (ret->tag[0] == '\0' && ret->digest[0] == '\0') snprintf(ret->tag, sizeof ret->tag, "latest");
  return 0;
}

int mu_imgref_format(const mu_imgref *ref, char *buf, size_t cap) {
  return snprintf(buf, cap, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag[0] ? ":" : "", ref->tag,
                  ref->digest[0] ? "@" : "", ref->digest);
}

const char *mu_imgref_reference(const mu_imgref *ref) { return ref->digest[0] ? ref->digest : ref->tag; }

bool mu_registry_is_loopback(const char *registry) {
  char host[MU_IMGREF_NAME_MAX + 1];
  snprintf(host, sizeof host, "%s", registry);
  if (host[0] == '[') return strncmp(host, "[::1]", 5) == 0 && (host[5] == '\0' || host[5] == ':');
  char *colon = strchr(host, ':');
  if (colon) *colon = '\0';
  if (strcmp(host, "localhost") == 0) return true;
  unsigned a, b, c, d;
  char tail;
  return sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a == 127 && b < 256 && c < 256 && d < 256;
}
