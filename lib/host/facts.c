/* Built-in host facts for selectors (see facts.h). */
#include "lib/host/facts.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One os-release value: an optional pair of quotes removed, backslash escapes kept simple
 * (a backslash takes the next character as it is). */
static void os_release_value(const char *v, size_t n, char *out, size_t out_size) {
  size_t o = 0;
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
    v++;
    n -= 2;
  }
  for (size_t i = 0; i < n && o + 1 < out_size; i++) {
    if (v[i] == '\\' && i + 1 < n) i++;
    out[o++] = v[i];
  }
  out[o] = '\0';
}

void mu_host_os_release_parse(const char *text, size_t len, char *id, size_t id_size, char *version,
                              size_t version_size) {
  if (id_size > 0) id[0] = '\0';
  if (version_size > 0) version[0] = '\0';
  const char *end = text + len;
  for (const char *line = text; line < end;) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    const char *stop = nl ? nl : end;
    size_t n = (size_t)(stop - line);
    if (n > 3 && strncmp(line, "ID=", 3) == 0 && id_size > 0) {
      os_release_value(line + 3, n - 3, id, id_size);
      for (char *c = id; *c; c++) *c = (char)tolower((unsigned char)*c);
    } else if (n > 11 && strncmp(line, "VERSION_ID=", 11) == 0 && version_size > 0) {
      os_release_value(line + 11, n - 11, version, version_size);
    }
    line = stop + 1;
  }
}

static void read_os_release(const char *path, char *id, size_t id_size, char *version, size_t version_size) {
  const char *paths[] = {path, "/etc/os-release", "/usr/lib/os-release"};
  id[0] = version[0] = '\0';
  for (size_t i = path ? 0 : 1; i < 3; i++) {
    FILE *f = fopen(paths[i], "r");
    if (f == NULL) continue;
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    mu_host_os_release_parse(text, n, id, id_size, version, version_size);
    return;
  }
}

size_t mu_host_fact_list(const mu_host_facts *f, const char *os_release_path, mu_host_fact out[MU_HOST_FACT_PAIRS]) {
  size_t n = 0;
  out[n].name = "os";
  snprintf(out[n].value, sizeof out[n].value, "%s", f->os_name);
  for (char *c = out[n].value; *c; c++) *c = (char)tolower((unsigned char)*c);
  n++;
  out[n].name = "kernel";
  snprintf(out[n].value, sizeof out[n].value, "%s", f->os_release);
  n++;
  out[n].name = "arch";
  snprintf(out[n].value, sizeof out[n].value, "%s", f->arch);
  n++;
  out[n].name = "hostname";
  snprintf(out[n].value, sizeof out[n].value, "%.127s", f->hostname);
  n++;
  out[n].name = "cpus";
  snprintf(out[n].value, sizeof out[n].value, "%" PRIu32, f->cpu_count);
  n++;
  out[n].name = "mem_gib";
  snprintf(out[n].value, sizeof out[n].value, "%.1f", (double)f->memory_bytes / (1024.0 * 1024.0 * 1024.0));
  n++;
  char id[64], version[64];
  read_os_release(os_release_path, id, sizeof id, version, sizeof version);
  if (id[0] != '\0') {
    out[n].name = "distro";
    snprintf(out[n].value, sizeof out[n].value, "%s", id);
    n++;
  }
  if (version[0] != '\0') {
    out[n].name = "distro_version";
    snprintf(out[n].value, sizeof out[n].value, "%s", version);
    n++;
  }
  return n;
}
