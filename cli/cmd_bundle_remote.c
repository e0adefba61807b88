/* `muster bundle push|ls|rm`: the bundle commands that talk to the control plane. push streams
 * FILE (and FILE.sig when present) through the client-streaming UploadBundle call, a window of
 * chunks at a time, with a progress bar when stderr is a terminal; pushing bytes the control
 * plane already has is answered at once ("already present"). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli/commands.h"
#include "lib/bundle/bundle.h"
#include "lib/bundle/keys.h"
#include "lib/rpc/rpc.h"
#include "muster/v1/admin.pb-c.h"

#define PUSH_CHUNK (1u << 20)
#define PUSH_WINDOW (4u << 20)
#define PUSH_MAX_FILE (4ull << 30)

static const char push_usage[] =
    "usage: muster bundle push FILE [--sig PATH] [--no-progress] [-o json]\n"
    "Uploads a bundle made by `muster bundle pack` (and its signature, FILE.sig by default).\n"
    "Pushing the same bytes twice stores them once.\n";

typedef struct push_state {
  mu_rpc_call *call;
  const uint8_t *data;
  size_t len, sent;
  int done, code, progress;
  char message[1024];
  uint8_t *reply;
  size_t reply_len;
  uv_timer_t timer;
  const char *label;
  int64_t last_draw_ms;
} push_state;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void draw(push_state *s, int final) {
  if (!s->progress) return;
  int64_t now = now_ms();
  if (!final && now - s->last_draw_ms < 100) return;
  s->last_draw_ms = now;
  double pct = s->len ? 100.0 * (double)s->sent / (double)s->len : 100.0;
  int width = 30, fill = (int)(pct * width / 100.0);
  char bar[40];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : ' ';
  bar[width] = '\0';
  fprintf(stderr, "\rpushing %s [%s] %5.1f%% %.1f/%.1f MiB", s->label, bar, pct, (double)s->sent / 1048576.0,
          (double)s->len / 1048576.0);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

static int on_reply(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  push_state *s = ud;
  (void)call;
  free(s->reply);
  s->reply = malloc(len ? len : 1);
  if (s->reply != NULL) memcpy(s->reply, data, len);
  s->reply_len = len;
  return 0;
}

static void on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  push_state *s = ud;
  (void)call;
  s->done = 1;
  s->call = NULL;
  s->code = st->code;
  snprintf(s->message, sizeof s->message, "%s", st->message);
  uv_timer_stop(&s->timer);
}

/* Queues chunks while the send queue is under the window; half-closes after the last. */
static void pump(uv_timer_t *t) {
  push_state *s = t->data;
  if (s->call == NULL) return;
  while (s->sent < s->len && mu_rpc_call_queued_bytes(s->call) < PUSH_WINDOW) {
    size_t n = s->len - s->sent < PUSH_CHUNK ? s->len - s->sent : PUSH_CHUNK;
    Muster__V1__UploadBundleRequest r = MUSTER__V1__UPLOAD_BUNDLE_REQUEST__INIT;
    r.chunk.data = (uint8_t *)s->data + s->sent;
    r.chunk.len = n;
    size_t plen = muster__v1__upload_bundle_request__get_packed_size(&r);
    uint8_t *buf = malloc(plen);
    if (buf == NULL) {
      mu_rpc_call_cancel(s->call, MU_RPC_CANCELLED, "out of memory");
      return;
    }
    muster__v1__upload_bundle_request__pack(&r, buf);
    int rc = mu_rpc_call_send(s->call, buf, plen, NULL);
    free(buf);
    if (rc != 0) return; /* the call is ending; on_done reports why */
    s->sent += n;
    if (s->sent == s->len) mu_rpc_call_close_send(s->call);
  }
  draw(s, 0);
}

static void on_closed(void *ud) { *(int *)ud = 1; }

static int push_run(const mu_cli_opts *opts, const Muster__V1__UploadBundleRequest *header, push_state *s,
                    mu_err *err) {
  uv_loop_t loop;
  mu_rpc_engine *engine = NULL;
  mu_rpc_channel *channel = NULL;
  int rc;
  uv_loop_init(&loop);
  uv_timer_init(&loop, &s->timer);
  s->timer.data = s;
  size_t hlen = muster__v1__upload_bundle_request__get_packed_size(header);
  uint8_t *hbuf = malloc(hlen ? hlen : 1);
  if (hbuf == NULL) {
    rc = mu_err_set(err, MU_ENOMEM, "out of memory");
    goto out;
  }
  muster__v1__upload_bundle_request__pack(header, hbuf);
  mu_rpc_options ro = {.max_message = 2 * PUSH_CHUNK + 128 * 1024};
  rc = mu_rpc_engine_new(&loop, &engine, err);
  if (rc != 0) goto out;
  rc = mu_cli_channel_new(opts, engine, opts->addr, &ro, &channel, err);
  if (rc != 0) goto out;
  mu_rpc_call_handlers h = {.on_message = on_reply, .on_done = on_done};
  mu_rpc_metadata md;
  rc = mu_cli_call_metadata(opts, &md, err);
  if (rc == 0) rc = mu_rpc_call_new(channel, "/muster.v1.Admin/UploadBundle", 0, &md, &h, s, &s->call, err);
  if (rc != 0) goto out;
  if (mu_rpc_call_send(s->call, hbuf, hlen, NULL) == 0) {
    uv_timer_start(&s->timer, pump, 0, 2);
  }
  while (!s->done) uv_run(&loop, UV_RUN_ONCE);
out:
  free(hbuf);
  uv_timer_stop(&s->timer);
  uv_close((uv_handle_t *)&s->timer, NULL);
  if (engine != NULL) {
    int closed = 0;
    mu_rpc_engine_close(engine, on_closed, &closed);
    while (!closed) uv_run(&loop, UV_RUN_ONCE);
  }
  uv_run(&loop, UV_RUN_NOWAIT);
  uv_loop_close(&loop);
  return rc;
}

static void print_info(const mu_cli_opts *opts, const Muster__V1__BundleInfo *bi) {
  if (opts->json) {
    mu_cli_print_json(&bi->base);
    return;
  }
  if (!opts->quiet) /* -q: the digest alone */
    printf("%s %s@%s (%llu bytes, %s)%s\n", bi->already_present ? "already present:" : "pushed", bi->name, bi->version,
           (unsigned long long)bi->size, bi->key_id[0] ? bi->key_id : "unsigned", "");
  printf("%s\n", bi->digest);
}

int mu_cli_bundle_upload(const mu_cli_opts *opts, const uint8_t *data, size_t len, const uint8_t *sig, size_t sig_len,
                         const char *label, int progress, Muster__V1__BundleInfo **ret_info, int *ret_status,
                         mu_err *err) {
  Muster__V1__UploadBundleRequest header = MUSTER__V1__UPLOAD_BUNDLE_REQUEST__INIT;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  mu_sig parsed;
  push_state s;
  int rc = 0;
  memset(&s, 0, sizeof s);
  *ret_status = 1;
  mu_bundle_digest(data, len, digest);
  header.digest = digest;
  header.total_size = len;
  if (sig != NULL) {
    rc = mu_sig_parse((const char *)sig, sig_len, &parsed, err);
    if (rc != 0) {
      *ret_status = 2;
      return mu_err_prefix(err, "signature");
    }
    header.signature.data = (uint8_t *)sig;
    header.signature.len = sig_len;
    header.key_id = parsed.key_id;
  }
  s.data = data;
  s.len = len;
  s.label = label;
  s.progress = progress && isatty(2);
  rc = push_run(opts, &header, &s, err);
  if (rc != 0) goto out;
  if (s.code == MU_RPC_OK) draw(&s, 1);
  else if (s.progress) fputc('\n', stderr);
  if (s.code != MU_RPC_OK) {
    rc = mu_err_set(err, MU_EIO, "%s: %s: %s", opts->addr, mu_rpc_code_name(s.code), s.message);
    *ret_status = s.code == MU_RPC_INVALID_ARGUMENT || s.code == MU_RPC_PERMISSION_DENIED ||
                          s.code == MU_RPC_ALREADY_EXISTS || s.code == MU_RPC_RESOURCE_EXHAUSTED
                      ? 2
                      : 1;
    goto out;
  }
  *ret_info = muster__v1__bundle_info__unpack(NULL, s.reply_len, s.reply);
  if (*ret_info == NULL) {
    rc = mu_err_set(err, MU_EIO, "%s: malformed BundleInfo reply", opts->addr);
    goto out;
  }
  *ret_status = 0;
out:
  free(s.reply);
  return rc;
}

int mu_cmd_bundle_push(const mu_cli_opts *opts, int argc, char **argv) {
  const char *file = NULL, *sig_path = NULL;
  int no_progress = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(push_usage, stdout);
      return 0;
    } else if (strcmp(argv[i], "--sig") == 0 && i + 1 < argc) {
      sig_path = argv[++i];
    } else if (strcmp(argv[i], "--no-progress") == 0) {
      no_progress = 1;
    } else if (argv[i][0] == '-' || file != NULL) {
      fprintf(stderr, "muster bundle push: unexpected argument '%s'\n%s", argv[i], push_usage);
      return 2;
    } else {
      file = argv[i];
    }
  }
  if (file == NULL) {
    fprintf(stderr, "muster bundle push: FILE is required\n%s", push_usage);
    return 2;
  }
  mu_err err = {0};
  uint8_t *data = NULL, *sig = NULL;
  size_t len = 0, sig_len = 0;
  char default_sig[4200];
  int status = 2;
  if (mu_bundle_read_file(file, PUSH_MAX_FILE, &data, &len, &err) != 0) {
    fprintf(stderr, "muster bundle push: %s\n", err.msg);
    return 2;
  }
  if (sig_path == NULL) {
    snprintf(default_sig, sizeof default_sig, "%s.sig", file);
    if (access(default_sig, F_OK) == 0) sig_path = default_sig;
  }
  if (sig_path != NULL && mu_bundle_read_file(sig_path, 64 * 1024, &sig, &sig_len, &err) != 0) {
    fprintf(stderr, "muster bundle push: signature %s: %s\n", sig_path, err.msg);
    goto out;
  }
  Muster__V1__BundleInfo *bi = NULL;
  if (mu_cli_bundle_upload(opts, data, len, sig, sig_len, file, !no_progress && !opts->json, &bi, &status, &err) != 0) {
    fprintf(stderr, "muster bundle push: %s\n", err.msg);
    goto out;
  }
  print_info(opts, bi);
  protobuf_c_message_free_unpacked(&bi->base, NULL);
out:
  free(data);
  free(sig);
  return status;
}

static const char ls_usage[] = "usage: muster bundle ls [NAME] [-o json]\n";

int mu_cmd_bundle_ls(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__ListBundlesRequest req = MUSTER__V1__LIST_BUNDLES_REQUEST__INIT;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(ls_usage, stdout);
      return 0;
    }
    if (argv[i][0] == '-' || req.name[0] != '\0') {
      fprintf(stderr, "muster bundle ls: unexpected argument '%s'\n%s", argv[i], ls_usage);
      return 2;
    }
    req.name = argv[i];
  }
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/ListBundles", &req.base, &muster__v1__list_bundles_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "muster bundle ls: %s\n", err.msg);
    return 1;
  }
  const Muster__V1__ListBundlesResponse *resp = (const Muster__V1__ListBundlesResponse *)reply;
  if (!opts->json && !opts->quiet)
    printf("%-24s %-12s %-20s %10s %-16s %s\n", "NAME", "VERSION", "DIGEST", "SIZE", "KEY", "UPLOADED");
  for (size_t i = 0; i < resp->n_bundles; i++) {
    const Muster__V1__BundleInfo *b = resp->bundles[i];
    if (opts->json) {
      mu_cli_print_json(&b->base);
      continue;
    }
    if (opts->quiet) { /* NAME@VERSION only */
      printf("%s@%s\n", b->name, b->version);
      continue;
    }
    char ago[32];
    printf("%-24s %-12s %-20.19s %10llu %-16s %s\n", b->name, b->version, b->digest, (unsigned long long)b->size,
           b->key_id[0] ? b->key_id : "-", mu_cli_ago(b->uploaded_at_ms, ago, sizeof ago));
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static const char rm_usage[] = "usage: muster bundle rm NAME@VERSION|sha256:DIGEST\n";

int mu_cmd_bundle_rm(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fputs(rm_usage, stdout);
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "muster bundle rm: expected one REF\n%s", rm_usage);
    return 2;
  }
  Muster__V1__DeleteBundleRequest req = MUSTER__V1__DELETE_BUNDLE_REQUEST__INIT;
  req.ref = argv[1];
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/DeleteBundle", &req.base, &muster__v1__delete_bundle_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "muster bundle rm: %s\n", err.msg);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  if (opts->json) printf("{\"removed\":\"%s\"}\n", argv[1]);
  else if (!opts->quiet) printf("removed %s\n", argv[1]);
  return 0;
}
