/* TLS material for lib/rpc: reading PEM files, and server credentials whose certificate, key
 * and client CA are re-read on the next handshake after any of them changes on disk. gRPC
 * calls the fetcher on its own threads before each handshake, so the check is a few stat()s
 * under a lock; running connections keep the material they were made with. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/base/log.h"
#include "lib/rpc/internal.h"

#define MU_RPC_PEM_MAX (1u << 20)

char *mu_rpc_read_file(const char *path, mu_err *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    mu_err_set(err, MU_ENOENT, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = malloc(MU_RPC_PEM_MAX + 1);
  size_t n = buf != NULL ? fread(buf, 1, MU_RPC_PEM_MAX + 1, f) : 0;
  int bad = ferror(f);
  fclose(f);
  if (buf == NULL) {
    mu_err_set(err, MU_ENOMEM, "out of memory reading %s", path);
    return NULL;
  }
  if (bad || n > MU_RPC_PEM_MAX) {
    free(buf);
    mu_err_set(err, MU_EINVAL, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

typedef struct tls_file {
  char *path;
  struct timespec mtime;
  off_t size;
  ino_t ino;
} tls_file;

struct mu_rpc_tls_state {
  pthread_mutex_t lock;
  tls_file files[3]; /* cert, key, ca (path NULL when none) */
  int loaded;        /* a config was handed to gRPC */
  int warned;        /* a failed reload was logged */
  uint64_t reloads;
};

static int file_changed(tls_file *f) {
  struct stat st;
  if (f->path == NULL) return 0;
  if (stat(f->path, &st) != 0) return 0; /* gone: keep what we have */
  int changed = st.st_mtim.tv_sec != f->mtime.tv_sec || st.st_mtim.tv_nsec != f->mtime.tv_nsec ||
                st.st_size != f->size || st.st_ino != f->ino;
  f->mtime = st.st_mtim;
  f->size = st.st_size;
  f->ino = st.st_ino;
  return changed;
}

/* Reads the three files into a new certificate config; NULL with err set. */
static grpc_ssl_server_certificate_config *load_config(mu_rpc_tls_state *s, mu_err *err) {
  char *cert = mu_rpc_read_file(s->files[0].path, err);
  char *key = cert ? mu_rpc_read_file(s->files[1].path, err) : NULL;
  char *ca = key && s->files[2].path ? mu_rpc_read_file(s->files[2].path, err) : NULL;
  grpc_ssl_server_certificate_config *cfg = NULL;
  if (cert != NULL && key != NULL && (s->files[2].path == NULL || ca != NULL)) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    cfg = grpc_ssl_server_certificate_config_create(ca, &pair, 1);
    if (cfg == NULL) mu_err_set(err, MU_EINVAL, "gRPC refused the TLS certificate config");
  }
  if (key != NULL) memset(key, 0, strlen(key));
  free(cert);
  free(key);
  free(ca);
  return cfg;
}

static grpc_ssl_certificate_config_reload_status fetch_config(void *ud, grpc_ssl_server_certificate_config **config) {
  mu_rpc_tls_state *s = ud;
  grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  pthread_mutex_lock(&s->lock);
  int changed = 0;
  for (int i = 0; i < 3; i++) changed |= file_changed(&s->files[i]);
  if (changed || !s->loaded) {
    mu_err err = {0};
    grpc_ssl_server_certificate_config *cfg = load_config(s, &err);
    if (cfg != NULL) {
      *config = cfg;
      st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
      if (s->loaded) mu_info("rpc", "TLS: certificate files changed, new connections use %s", s->files[0].path);
      s->loaded = 1;
      s->warned = 0;
      s->reloads++;
    } else {
      if (!s->warned) mu_warn("rpc", "TLS: keeping the previous certificate: %s", err.msg);
      s->warned = 1;
      if (!s->loaded) st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    }
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}

void mu_rpc_tls_state_free(mu_rpc_tls_state *s) {
  if (s == NULL) return;
  for (int i = 0; i < 3; i++) free(s->files[i].path);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

grpc_server_credentials *mu_rpc_tls_server_creds(const mu_rpc_creds *creds, mu_rpc_tls_state **ret_state, mu_err *err) {
  if (creds->cert_file == NULL || creds->key_file == NULL) {
    mu_err_set(err, MU_EINVAL, "a TLS listener needs a certificate and a key");
    return NULL;
  }
  if (creds->require_client_cert && creds->ca_file == NULL) {
    mu_err_set(err, MU_EINVAL, "requiring client certificates needs a CA file");
    return NULL;
  }
  mu_rpc_tls_state *s = calloc(1, sizeof *s);
  if (s == NULL) {
    mu_err_set(err, MU_ENOMEM, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&s->lock, NULL);
  const char *paths[3] = {creds->cert_file, creds->key_file, creds->ca_file};
  for (int i = 0; i < 3; i++) {
    if (paths[i] != NULL) s->files[i].path = strdup(paths[i]);
    if (paths[i] != NULL && s->files[i].path == NULL) {
      mu_rpc_tls_state_free(s);
      mu_err_set(err, MU_ENOMEM, "out of memory");
      return NULL;
    }
    file_changed(&s->files[i]);
  }
  /* Read once now so a bad file is an error at start, not at the first handshake. */
  grpc_ssl_server_certificate_config *first = load_config(s, err);
  if (first == NULL) {
    mu_rpc_tls_state_free(s);
    return NULL;
  }
  grpc_ssl_server_certificate_config_destroy(first);
  grpc_ssl_server_credentials_options *o = grpc_ssl_server_credentials_create_options_using_config_fetcher(
      creds->require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                 : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
      fetch_config, s);
  grpc_server_credentials *sc = o ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
  if (sc == NULL) {
    mu_rpc_tls_state_free(s);
    mu_err_set(err, MU_EINVAL, "gRPC refused the TLS server options");
    return NULL;
  }
  *ret_state = s;
  return sc;
}
