/* Fuzzes what operators type into musterd and muster-agent: YAML config files, command-line
 * flags, label sets and addresses. Byte 0 picks the entry point (see `modes`); the rest is its
 * text. Beyond "no crash, no leak": a refusal always says why, label sets and lists that parse
 * format back to text that parses to the same set, and an address that parses keeps its host
 * and port through HOST:PORT formatting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/config/addr.h"
#include "lib/config/agent_config.h"
#include "lib/config/labels.h"
#include "lib/config/server_config.h"
#include "lib/config/strlist.h"
#include "lib/fuzz/fuzz_util.h"

static void refused(int rc, const mu_err *err) { MU_FUZZ_CHECK(rc < 0 && err->code == rc && err->msg[0] != '\0'); }

/* A musterd (server) or muster-agent config file, loaded from a memfd. */
static void config_file(const uint8_t *data, size_t size, int server) {
  char path[64];
  int fd = mu_fuzz_memfile(data, size, path, sizeof path);
  if (fd < 0) return;
  mu_err err = {0};
  int rc;
  if (server) {
    mu_server_config cfg;
    mu_server_config_init(&cfg);
    rc = mu_server_config_load(&cfg, path, &err);
    if (rc == 0) MU_FUZZ_CHECK(cfg.etcd.n >= 1 && cfg.listen[0] && cfg.advertise[0]);
    mu_server_config_free(&cfg);
  } else {
    mu_agent_config cfg;
    mu_agent_config_init(&cfg);
    rc = mu_agent_config_load(&cfg, path, &err);
    if (rc == 0) MU_FUZZ_CHECK(cfg.control.n >= 1 && cfg.slots >= 1 && cfg.id[0]);
    mu_agent_config_free(&cfg);
  }
  if (rc != 0) refused(rc, &err);
  close(fd);
}

/* "key\nvalue": one --key=value flag. */
static void flag(const uint8_t *data, size_t size, int server) {
  char *kv[2];
  if (mu_fuzz_split(data, size, "\n", kv, NULL, 2) != 0) return;
  mu_err err = {0};
  int rc;
  if (server) {
    mu_server_config cfg;
    mu_server_config_init(&cfg);
    rc = mu_server_config_set(&cfg, kv[0], kv[1], &err);
    mu_server_config_free(&cfg);
  } else {
    mu_agent_config cfg;
    mu_agent_config_init(&cfg);
    rc = mu_agent_config_set(&cfg, kv[0], kv[1], &err);
    mu_agent_config_free(&cfg);
  }
  if (rc != 0) refused(rc, &err);
  mu_fuzz_split_free(kv, 2);
}

static void labels(const char *text, int flags) {
  mu_labels l, again;
  mu_labels_init(&l);
  mu_labels_init(&again);
  mu_err err = {0};
  int rc = mu_labels_parse(&l, text, flags, &err);
  if (rc != 0) {
    refused(rc, &err);
    MU_FUZZ_CHECK(l.n == 0); /* unchanged on error */
  } else {
    size_t need = mu_labels_format(&l, NULL, 0);
    char *buf = malloc(need + 1);
    MU_FUZZ_CHECK(buf != NULL);
    MU_FUZZ_CHECK(mu_labels_format(&l, buf, need + 1) == need && strlen(buf) == need);
    MU_FUZZ_CHECK(mu_labels_parse(&again, buf, flags, &err) == 0);
    MU_FUZZ_CHECK(again.n == l.n);
    for (size_t i = 0; i < l.n; i++) {
      const char *v = mu_labels_get(&again, l.items[i].key);
      MU_FUZZ_CHECK(v != NULL && strcmp(v, l.items[i].value) == 0);
      MU_FUZZ_CHECK(mu_label_key_check(l.items[i].key, &err) == 0);
      MU_FUZZ_CHECK(mu_label_value_check(l.items[i].key, l.items[i].value, flags, &err) == 0);
    }
    free(buf);
  }
  mu_labels_free(&l);
  mu_labels_free(&again);
}

static void address(const char *text) {
  char host[MU_HOST_MAX + 1];
  uint16_t port = 0;
  mu_err err = {0};
  int rc = mu_hostport_parse(text, host, sizeof host, &port, &err);
  if (rc != 0) {
    refused(rc, &err);
  } else {
    MU_FUZZ_CHECK(port >= 1 && strlen(host) >= 1 && strlen(host) <= MU_HOST_MAX);
    char again[MU_HOST_MAX + 16], host2[MU_HOST_MAX + 1];
    uint16_t port2 = 0;
    snprintf(again, sizeof again, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    MU_FUZZ_CHECK(mu_hostport_parse(again, host2, sizeof host2, &port2, &err) == 0);
    MU_FUZZ_CHECK(strcmp(host, host2) == 0 && port == port2);
  }
  rc = mu_url_check(text, &err);
  if (rc != 0) refused(rc, &err);
  (void)mu_host_is_wildcard(text);
}

static void list(const char *text) {
  mu_strlist l, again;
  mu_strlist_init(&l);
  mu_strlist_init(&again);
  mu_err err = {0};
  int rc = mu_strlist_split(&l, text, &err);
  if (rc != 0) {
    refused(rc, &err);
    MU_FUZZ_CHECK(l.n == 0);
  } else if (l.n > 0) {
    size_t need = mu_strlist_join(&l, ",", NULL, 0);
    char *buf = malloc(need + 1);
    MU_FUZZ_CHECK(buf != NULL);
    MU_FUZZ_CHECK(mu_strlist_join(&l, ",", buf, need + 1) == need);
    MU_FUZZ_CHECK(mu_strlist_split(&again, buf, &err) == 0 && again.n == l.n);
    for (size_t i = 0; i < l.n; i++) MU_FUZZ_CHECK(strcmp(l.items[i], again.items[i]) == 0);
    free(buf);
  }
  mu_strlist_free(&l);
  mu_strlist_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = (uint8_t)((data[0] & 0x7f) % 7); /* 0x80: labels may hold globs */
  int glob = (data[0] & 0x80) != 0;
  data++;
  size--;
  if (mode == 0 || mode == 1) {
    config_file(data, size, mode == 0);
    return 0;
  }
  if (mode == 2 || mode == 3) {
    flag(data, size, mode == 2);
    return 0;
  }
  char *text = mu_fuzz_cstr(data, size);
  if (text == NULL) return 0;
  if (mode == 4) labels(text, glob ? MU_LABELS_GLOB : 0);
  if (mode == 5) address(text);
  if (mode == 6) list(text);
  free(text);
  return 0;
}
