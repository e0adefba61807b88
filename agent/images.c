/* The agent's side of ListImages (`muster images`): a ControlMessage.ImagesRequest runs
 * `muster-container images --store DIR` (the container plugin's helper, beside its .so, or
 * $MUSTER_CONTAINER_HELPER; the store is $MUSTER_CONTAINER_STORE as the plugin has it) on the
 * loop, reads its lines (digest, last use, bytes, refs, in-use; at most MU_IMAGES_OUT_MAX
 * bytes, MU_IMAGES_TIMEOUT_MS) and answers with an ImagesReply. A prune runs
 * `muster-container gc --store DIR [--max-bytes N] [--max-age-s N] --list` instead (its first
 * line says what the GC removed). An agent without the container task type answers with an
 * error saying so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/base/log.h"

#define MU_IMAGES_OUT_MAX (1 << 20)
#define MU_IMAGES_TIMEOUT_MS 15000
#define MU_IMAGES_MAX 4096

typedef struct img_list {
  mu_agent_daemon *agent;
  char request_id[128];
  uv_process_t proc;
  uv_pipe_t out;
  uv_timer_t timer;
  char *buf;
  size_t len;
  int open_handles;
  bool exited, eof, sent, prune;
  int64_t status;
  char rbuf[65536];
} img_list;

static void send_reply(mu_agent_daemon *a, const char *request_id, Muster__V1__StoredImage **images, size_t n,
                       const char *error, const Muster__V1__ImagesReply *gc) {
  if (a->conn.call == NULL || !a->conn.welcomed) return;
  Muster__V1__AgentMessage msg = MUSTER__V1__AGENT_MESSAGE__INIT;
  Muster__V1__ImagesReply rep = MUSTER__V1__IMAGES_REPLY__INIT;
  if (gc != NULL) rep = *gc;
  rep.request_id = (char *)request_id;
  rep.images = images;
  rep.n_images = n;
  rep.error = (char *)(error ? error : "");
  msg.msg_case = MUSTER__V1__AGENT_MESSAGE__MSG_IMAGES_REPLY;
  msg.images_reply = &rep;
  mu_err err = {0};
  if (mu_conn_send(&a->conn, &msg, &err) != 0) mu_debug("images", "reply to %s not sent: %s", request_id, err.msg);
}

/* "sha256:<hex> <last use s> <bytes> <ref,ref|-> [in-use]" lines into images. */
static size_t parse_lines(char *text, Muster__V1__StoredImage *img, Muster__V1__StoredImage **ptrs, char **refv,
                          size_t max) {
  size_t n = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line != NULL && n < max; line = strtok_r(NULL, "\n", &save)) {
    char *f[5] = {NULL};
    char *fs = NULL;
    int k = 0;
    for (char *w = strtok_r(line, " ", &fs); w != NULL && k < 5; w = strtok_r(NULL, " ", &fs)) f[k++] = w;
    if (k < 4 || strncmp(f[0], "sha256:", 7) != 0) continue;
    muster__v1__stored_image__init(&img[n]);
    img[n].digest = f[0];
    img[n].last_used_ms = strtoll(f[1], NULL, 10) * 1000;
    img[n].bytes = strtoull(f[2], NULL, 10);
    img[n].in_use = k == 5 && strcmp(f[4], "in-use") == 0;
    if (strcmp(f[3], "-") != 0) {
      refv[n] = f[3];
      img[n].refs = &refv[n];
      img[n].n_refs = 1;
      /* several refs are comma-separated: split them in place */
      size_t commas = 0;
      for (char *c = f[3]; *c; c++) commas += *c == ',';
      if (commas > 0) {
        char **v = calloc(commas + 1, sizeof *v);
        if (v != NULL) {
          size_t m = 0;
          char *rs = NULL;
          for (char *r = strtok_r(f[3], ",", &rs); r != NULL; r = strtok_r(NULL, ",", &rs)) v[m++] = r;
          img[n].refs = v;
          img[n].n_refs = m;
        }
      }
    }
    ptrs[n] = &img[n];
    n++;
  }
  return n;
}

static void list_closed(uv_handle_t *h) {
  img_list *l = h->data;
  if (--l->open_handles > 0) return;
  free(l->buf);
  free(l);
}

static void finish(img_list *l) {
  if (!l->exited || !l->eof || l->sent) return;
  l->sent = true;
  uv_timer_stop(&l->timer);
  char err[300] = "";
  Muster__V1__StoredImage *img = calloc(MU_IMAGES_MAX, sizeof *img);
  Muster__V1__StoredImage **ptrs = calloc(MU_IMAGES_MAX, sizeof *ptrs);
  char **refv = calloc(MU_IMAGES_MAX, sizeof *refv);
  size_t n = 0;
  if (img == NULL || ptrs == NULL || refv == NULL) {
    snprintf(err, sizeof err, "out of memory");
  } else if (l->status != 0) {
    snprintf(err, sizeof err, "muster-container images exited %lld: %.200s", (long long)l->status,
             l->buf != NULL ? l->buf : "");
  }
  Muster__V1__ImagesReply gc = MUSTER__V1__IMAGES_REPLY__INIT;
  if (err[0] == '\0' && l->buf != NULL) {
    char *text = l->buf;
    if (l->prune) { /* "removed R kept K in-use U bytes B -> A" first */
      unsigned removed = 0, kept = 0, in_use = 0;
      unsigned long long before = 0, after = 0;
      if (sscanf(text, "removed %u kept %u in-use %u bytes %llu -> %llu", &removed, &kept, &in_use, &before, &after) !=
          5)
        snprintf(err, sizeof err, "muster-container gc: unexpected output: %.100s", text);
      gc.removed = removed;
      gc.bytes_before = before;
      gc.bytes_after = after;
      char *nl = strchr(text, '\n');
      text = nl != NULL ? nl + 1 : text + strlen(text);
    }
    if (err[0] == '\0') n = parse_lines(text, img, ptrs, refv, MU_IMAGES_MAX);
  }
  send_reply(l->agent, l->request_id, ptrs, n, err[0] ? err : NULL, &gc);
  for (size_t i = 0; img != NULL && i < n; i++)
    if (img[i].n_refs > 1) free(img[i].refs);
  free(img);
  free(ptrs);
  free(refv);
  uv_close((uv_handle_t *)&l->timer, list_closed);
  uv_close((uv_handle_t *)&l->proc, list_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  img_list *l = h->data;
  (void)suggested;
  *b = uv_buf_init(l->rbuf, sizeof l->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  img_list *l = s->data;
  if (n > 0 && l->len + (size_t)n < MU_IMAGES_OUT_MAX) {
    char *nb = realloc(l->buf, l->len + (size_t)n + 1);
    if (nb != NULL) {
      memcpy(nb + l->len, b->base, (size_t)n);
      l->len += (size_t)n;
      nb[l->len] = '\0';
      l->buf = nb;
    }
  }
  if (n < 0) {
    l->eof = true;
    uv_close((uv_handle_t *)&l->out, list_closed);
    finish(l);
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  img_list *l = p->data;
  l->exited = true;
  l->status = sig ? 128 + sig : status;
  finish(l);
}

static void on_timeout(uv_timer_t *t) {
  img_list *l = t->data;
  uv_process_kill(&l->proc, SIGKILL);
}

/* The helper beside the container plugin's .so, or $MUSTER_CONTAINER_HELPER. */
static bool helper_path(mu_agent_daemon *a, char *out, size_t cap) {
  const char *h = getenv("MUSTER_CONTAINER_HELPER");
  if (h != NULL && *h) return snprintf(out, cap, "%s", h) < (int)cap;
  const muster_plugin *p = mu_plugin_host_find(a->plugins, "container");
  Dl_info info;
  if (p == NULL || dladdr((const void *)p, &info) == 0 || info.dli_fname == NULL) return false;
  snprintf(out, cap, "%s", info.dli_fname);
  char *slash = strrchr(out, '/');
  if (slash == NULL) return false;
  snprintf(slash + 1, cap - (size_t)(slash + 1 - out), "muster-container");
  return true;
}

void mu_images_on_request(mu_agent_daemon *a, const Muster__V1__ImagesRequest *req) {
  char helper[PATH_MAX];
  if (!helper_path(a, helper, sizeof helper)) {
    send_reply(a, req->request_id, NULL, 0, "this agent has no container task type", NULL);
    return;
  }
  const char *store = getenv("MUSTER_CONTAINER_STORE");
  if (store == NULL || store[0] != '/') store = "/var/lib/muster/images";
  img_list *l = calloc(1, sizeof *l);
  if (l == NULL) return;
  l->agent = a;
  l->prune = req->prune;
  snprintf(l->request_id, sizeof l->request_id, "%s", req->request_id);
  uv_pipe_init(a->loop, &l->out, 0);
  uv_timer_init(a->loop, &l->timer);
  l->out.data = l->timer.data = l->proc.data = l;
  l->open_handles = 2;
  char max_bytes[32], max_age[32];
  snprintf(max_bytes, sizeof max_bytes, "%llu", (unsigned long long)req->max_bytes);
  snprintf(max_age, sizeof max_age, "%lld", (long long)req->max_age_s);
  char *list_argv[] = {helper, "images", "--store", (char *)store, NULL};
  char *gc_argv[] = {helper,    "gc",          "--store", (char *)store, "--max-bytes",
                     max_bytes, "--max-age-s", max_age,   "--list",      NULL};
  char **argv = req->prune ? gc_argv : list_argv;
  uv_stdio_container_t io[3] = {{.flags = UV_IGNORE},
                                {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&l->out},
                                {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t po = {.file = helper, .args = argv, .exit_cb = on_exit_cb, .stdio = io, .stdio_count = 3};
  int rc = uv_spawn(a->loop, &l->proc, &po);
  if (rc != 0) {
    char msg[PATH_MAX + 64];
    snprintf(msg, sizeof msg, "cannot run %s: %s", helper, uv_strerror(rc));
    send_reply(a, req->request_id, NULL, 0, msg, NULL);
    l->sent = true;
    uv_close((uv_handle_t *)&l->out, list_closed);
    uv_close((uv_handle_t *)&l->timer, list_closed);
    return;
  }
  l->open_handles = 3;
  uv_read_start((uv_stream_t *)&l->out, on_alloc, on_read);
  uv_timer_start(&l->timer, on_timeout, MU_IMAGES_TIMEOUT_MS, 0);
}
