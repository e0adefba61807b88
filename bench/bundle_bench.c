/* bundle_bench: the bundle figures of issue 5. (1) Pack + sign throughput of lib/bundle (what
 * `muster bundle pack` and `muster bundle sign` run) on a generated directory of mixed
 * compressible and incompressible files, against `tar --zstd -cf` + `openssl pkeyutl -sign`
 * (Ed25519, -rawin) and `minisign -S` on the same directory. (2) Distribution: a real
 * single-node etcd, musterd --etcd, one bundle pushed with the CLI, then N simulated agents
 * (bench/fleet) ask for it at once; prints per-agent and total times and the bytes musterd
 * read from etcd for it (its /metrics; target: read once). Prints "name: value unit" lines;
 * exit 0 when the run completed, 1 when it could not, 2 for bad flags (docs/benchmarks.md). */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/fleet.h"
#include "bench/setup.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/pack.h"
#include "lib/bundle/verify.h"

#define LOG "bundle_bench"
#define TARGET_READS 1.0 /* bundle sizes read from etcd per distribution */

static const char usage[] =
    "usage: bundle_bench [--dir-size SIZE] [--runs N] [--bundle-size SIZE] [--agents N]\n"
    "                    [--agents-per-channel N] [--timeout DUR] [--skip-pack] [--skip-dist]\n"
    "                    [--musterd PATH] [--muster PATH] [--etcd PATH] [--work-dir DIR]\n"
    "                    [--keep-work-dir]\n"
    "\n"
    "Pack + sign throughput against tar --zstd + openssl / minisign on a generated directory\n"
    "(default 200M, best of 2 runs), then the time for N simulated agents (default 100, 10 per\n"
    "connection) to receive one bundle (default 50M) from musterd --etcd, and how many bytes\n"
    "musterd read from etcd for it. Binaries come from the Bazel runfiles; etcd from\n"
    "/usr/bin/etcd.\n";

typedef struct opts {
  uint64_t dir_bytes, bundle_bytes;
  size_t runs, agents, per_channel;
  int64_t timeout_ms;
  int skip_pack, skip_dist, keep;
  const char *musterd_flag, *muster_flag, *etcd_flag, *work_flag;
} opts;

typedef struct bench {
  opts o;
  char work[PATH_MAX];
  char musterd[PATH_MAX], muster[PATH_MAX], etcd[PATH_MAX];
  pid_t etcd_pid, musterd_pid;
  int failed;
} bench;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- generated data ---- */

static uint64_t rnd(uint64_t *s) { /* xorshift64*: fast, incompressible enough for zstd */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static int write_file(const char *path, uint64_t size, int text, uint64_t *seed, mu_err *err) {
  static const char *words[] = {"GET",        "/api/v1/jobs", "200",      "user=alice", "latency_ms=", "INFO",
                                "scheduler:", "assigned",     "task",     "to",         "agent",       "web-042",
                                "bytes=",     "WARN",         "retrying", "etcd",       "lease"};
  FILE *f = fopen(path, "wb");
  if (f == NULL) return mu_err_set(err, MU_EIO, "cannot create %s: %s", path, strerror(errno));
  char buf[65536];
  uint64_t left = size;
  while (left > 0) {
    size_t n = 0;
    if (text) { /* log-like lines: compress ~5-10x */
      while (n < sizeof buf - 128) {
        uint64_t r = rnd(seed);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%llu %s %s %llu\n",
                              (unsigned long long)(1700000000000ull + (r & 0xfffff)), words[r % 17],
                              words[(r >> 8) % 17], (unsigned long long)(r >> 40));
      }
    } else {
      for (; n + 8 <= sizeof buf; n += 8) {
        uint64_t r = rnd(seed);
        memcpy(buf + n, &r, 8);
      }
    }
    if (n > left) n = (size_t)left;
    if (fwrite(buf, 1, n, f) != n) {
      fclose(f);
      return mu_err_set(err, MU_EIO, "writing %s: %s", path, strerror(errno));
    }
    left -= n;
  }
  if (fclose(f) != 0) return mu_err_set(err, MU_EIO, "writing %s: %s", path, strerror(errno));
  return 0;
}

/* Fills dir with about total bytes: half log-like text, half random, in files of 16K..4M
 * spread over a few subdirectories. Returns the exact byte and file counts. */
static int make_tree(const char *dir, uint64_t total, int text_only_random, uint64_t *ret_bytes, size_t *ret_files,
                     mu_err *err) {
  static const uint64_t sizes[] = {16 << 10, 256 << 10, 1 << 20, 4 << 20, 64 << 10, 2 << 20};
  uint64_t seed = 0x9e3779b97f4a7c15ull, bytes = 0;
  size_t files = 0;
  char path[PATH_MAX + 64];
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return mu_err_set(err, MU_EIO, "cannot create %s: %s", dir, strerror(errno));
  for (int d = 0; d < 4; d++) {
    snprintf(path, sizeof path, "%s/d%d", dir, d);
    mkdir(path, 0755);
  }
  while (bytes < total) {
    uint64_t size = sizes[files % 6];
    if (size > total - bytes) size = total - bytes;
    int text = text_only_random ? 0 : (int)(files % 2);
    snprintf(path, sizeof path, "%s/d%zu/f%05zu.%s", dir, files % 4, files, text ? "log" : "bin");
    int rc = write_file(path, size, text, &seed, err);
    if (rc != 0) return rc;
    bytes += size;
    files++;
  }
  *ret_bytes = bytes;
  *ret_files = files;
  return 0;
}

/* ---- child processes ---- */

/* Runs argv (NULL-terminated) with output to log; returns its exit status, -1 if it could not
 * run. */
static int run_cmd(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t spawn_bg(char *const argv[], const char *log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setpgid(0, 0);
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

static int have(const char *path) { return access(path, X_OK) == 0; }

/* ---- part 1: pack + sign ---- */

static double time_ours(const char *dir, const char *out, const mu_seckey *sk, double *ret_pack, mu_err *err) {
  mu_pack_opts po = {.name = "bench", .version = "1.0.0", .created_at = 1700000000};
  mu_unpack_limits lim;
  mu_unpack_limits_default(&lim);
  lim.max_archive_bytes = lim.max_total_bytes = 64ull << 30;
  lim.max_file_bytes = 64ull << 30;
  po.limits = &lim;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  double t0 = now_s();
  if (mu_bundle_pack(dir, &po, out, digest, err) != 0) return -1;
  *ret_pack = now_s() - t0;
  if (mu_bundle_sign_file(out, sk, &lim, NULL, err) != 0) return -1;
  return now_s() - t0;
}

static double time_cmds(char *const *a, char *const *b, const char *log, double *ret_first) {
  double t0 = now_s();
  if (run_cmd(a, log) != 0) return -1;
  double t1 = now_s();
  if (run_cmd(b, log) != 0) return -1;
  if (ret_first) *ret_first = t1 - t0;
  return now_s() - t0;
}

static double file_mib(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (double)st.st_size / 1048576.0 : 0;
}

static void best(double *cur, double v) {
  if (v > 0 && (*cur <= 0 || v < *cur)) *cur = v;
}

static int part_pack(bench *b) {
  mu_err err = {0};
  char dir[PATH_MAX + 16], log[PATH_MAX + 16], out[PATH_MAX + 32], tarf[PATH_MAX + 32], sig[PATH_MAX + 32],
      pem[PATH_MAX + 32], msec[PATH_MAX + 32], mpub[PATH_MAX + 32], msig[PATH_MAX + 32];
  snprintf(dir, sizeof dir, "%s/tree", b->work);
  snprintf(log, sizeof log, "%s/tools.log", b->work);
  snprintf(out, sizeof out, "%s/ours.bundle", b->work);
  snprintf(tarf, sizeof tarf, "%s/tree.tar.zst", b->work);
  snprintf(sig, sizeof sig, "%s/tree.tar.zst.sig", b->work);
  snprintf(pem, sizeof pem, "%s/ed25519.pem", b->work);
  snprintf(msec, sizeof msec, "%s/minisign.key", b->work);
  snprintf(mpub, sizeof mpub, "%s/minisign.pub", b->work);
  snprintf(msig, sizeof msig, "%s/tree.tar.zst.minisig", b->work);
  uint64_t bytes = 0;
  size_t files = 0;
  double t0 = now_s();
  if (make_tree(dir, b->o.dir_bytes, 0, &bytes, &files, &err) != 0) {
    mu_error(LOG, "%s", err.msg);
    return -1;
  }
  double mib = (double)bytes / 1048576.0;
  mu_info(LOG, "generated %zu files, %.1f MiB in %.1fs", files, mib, now_s() - t0);
  mu_seckey sk;
  mu_pubkey pk;
  if (mu_key_generate(&sk, &pk, &err) != 0) {
    mu_error(LOG, "%s", err.msg);
    return -1;
  }
  char *genpkey[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "ed25519", "-out", pem, NULL};
  int have_openssl = have(genpkey[0]) && run_cmd(genpkey, log) == 0;
  char *mgen[] = {"/usr/bin/minisign", "-G", "-W", "-f", "-p", mpub, "-s", msec, NULL};
  int have_minisign = have(mgen[0]) && run_cmd(mgen, log) == 0;
  char *tar[] = {"/usr/bin/tar", "--zstd", "-cf", tarf, "-C", dir, ".", NULL};
  char *ossl[] = {"/usr/bin/openssl", "pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", tarf, "-out", sig, NULL};
  char *msign[] = {"/usr/bin/minisign", "-S", "-s", msec, "-m", tarf, "-x", msig, NULL};
  /* lib/bundle compresses with zstd level 3 by default, as tar --zstd does; the level-10 tar
   * run shows what `muster bundle pack --level 10` trades for a smaller bundle */
  char *tar10[] = {"/usr/bin/tar", "-I", "zstd -10", "-cf", tarf, "-C", dir, ".", NULL};
  double tar_mib = 0;
  double ours = 0, ours_pack = 0, tar_ossl = 0, tar_only = 0, tar_mini = 0, tar10_ossl = 0;
  for (size_t r = 0; r < b->o.runs; r++) {
    double pack = 0;
    double t = time_ours(dir, out, &sk, &pack, &err);
    if (t < 0) {
      mu_error(LOG, "lib/bundle pack + sign: %s", err.msg);
      mu_seckey_wipe(&sk);
      return -1;
    }
    if (ours <= 0 || t < ours) ours_pack = pack;
    best(&ours, t);
    double first = 0;
    if (have_openssl) {
      t = time_cmds(tar, ossl, log, &first);
      if (t < 0) mu_warn(LOG, "tar --zstd + openssl failed; see %s", log);
      best(&tar_ossl, t);
      best(&tar_only, first);
      tar_mib = file_mib(tarf);
    }
    if (have_minisign) {
      t = time_cmds(tar, msign, log, NULL);
      if (t < 0) mu_warn(LOG, "tar --zstd + minisign failed; see %s", log);
      best(&tar_mini, t);
    }
    if (have_openssl && have("/usr/bin/zstd")) {
      t = time_cmds(tar10, ossl, log, NULL);
      if (t < 0) mu_warn(LOG, "tar -I 'zstd -10' + openssl failed; see %s", log);
      best(&tar10_ossl, t);
    }
  }
  mu_seckey_wipe(&sk);
  printf("pack_sign_input: %.1f MiB (%zu files, half log-like text, half random)\n", mib, files);
  printf(
      "pack_sign_ours: %.1f MiB/s (%.2f s, of which pack %.2f s; bundle %.1f MiB; lib/bundle "
      "pack + sign, zstd level 3)\n",
      mib / ours, ours, ours_pack, file_mib(out));
  if (tar_ossl > 0) {
    printf("pack_sign_tar_zstd_openssl: %.1f MiB/s (%.2f s, of which tar %.2f s; archive %.1f MiB)\n", mib / tar_ossl,
           tar_ossl, tar_only, tar_mib);
    printf("pack_sign_ratio_vs_openssl: %.2f x (ours / tar+openssl; no target)\n", tar_ossl / ours);
  } else {
    printf("pack_sign_tar_zstd_openssl: n/a (openssl missing or failed)\n");
  }
  if (tar10_ossl > 0) {
    printf("pack_sign_tar_zstd10_openssl: %.1f MiB/s (%.2f s; tar -I 'zstd -10', slower, smaller)\n", mib / tar10_ossl,
           tar10_ossl);
    printf("pack_sign_ratio_vs_zstd10_openssl: %.2f x (ours / tar+zstd -10+openssl; no target)\n", tar10_ossl / ours);
  }
  if (tar_mini > 0) {
    printf("pack_sign_tar_zstd_minisign: %.1f MiB/s (%.2f s)\n", mib / tar_mini, tar_mini);
    printf("pack_sign_ratio_vs_minisign: %.2f x (ours / tar+minisign; no target)\n", tar_mini / ours);
  } else {
    printf("pack_sign_tar_zstd_minisign: n/a (minisign not installed; scripts/setup installs it)\n");
  }
  fflush(stdout);
  return 0;
}

/* ---- part 2: distribution ---- */

typedef struct buf {
  char data[65536];
  size_t len;
} buf;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buf *b = ud;
  size_t len = size * n, room = sizeof b->data - 1 - b->len;
  if (len > room) len = room;
  memcpy(b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return size * n;
}

/* GET url into out (truncated at 64K). Returns the HTTP status, 0 when unreachable. */
static long http_get(const char *url, buf *out) {
  CURL *c = curl_easy_init();
  long code = 0;
  if (c == NULL) return 0;
  out->len = 0;
  out->data[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  return code;
}

static double metric(const char *url, const char *name) {
  buf b;
  if (http_get(url, &b) != 200) return -1;
  size_t nl = strlen(name);
  for (char *line = b.data; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (strncmp(line, name, nl) == 0 && line[nl] == ' ') return strtod(line + nl + 1, NULL);
  return -1;
}

static int wait_for(int (*cond)(void *), void *ud, int64_t timeout_ms) {
  int64_t until = mu_mono_ms() + timeout_ms;
  while (mu_mono_ms() < until) {
    if (cond(ud)) return 1;
    usleep(100 * 1000);
  }
  return cond(ud);
}

static int etcd_healthy(void *ud) {
  buf b;
  return http_get(ud, &b) == 200 && strstr(b.data, "\"true\"") != NULL;
}

typedef struct leader_probe {
  bench *b;
  const char *addr;
} leader_probe;

static int musterd_leads(void *ud) {
  leader_probe *p = ud;
  char log[PATH_MAX + 16];
  snprintf(log, sizeof log, "%s/cluster-probe.json", p->b->work);
  unlink(log);
  char *argv[] = {p->b->muster, "--addr", (char *)p->addr, "-o", "json", "cluster", NULL};
  if (run_cmd(argv, log) != 0) return 0;
  FILE *f = fopen(log, "r");
  char text[4096] = "";
  if (f != NULL) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
  }
  return strstr(text, "\"leader\":true") != NULL || strstr(text, "\"leader\": true") != NULL;
}

typedef struct dist {
  bench *b;
  mu_fleet *fleet;
  mu_rpc_engine *engine;
  uv_timer_t tick;
  char digest[MU_BUNDLE_DIGEST_SIZE];
  int phase; /* 0 connecting, 1 transferring, 2 stopping */
  int64_t phase_until;
  int timed_out;
} dist;

static void on_engine_closed(void *ud) { (void)ud; }

static void on_fleet_stopped(void *ud) {
  dist *ds = ud;
  mu_rpc_engine_close(ds->engine, on_engine_closed, ds);
}

static void dist_stop(dist *ds) {
  ds->phase = 2;
  uv_timer_stop(&ds->tick);
  uv_close((uv_handle_t *)&ds->tick, NULL);
  mu_fleet_stop(ds->fleet, on_fleet_stopped, ds);
}

static void on_tick(uv_timer_t *t) {
  dist *ds = t->data;
  const mu_fleet_stats *st = mu_fleet_stats_get(ds->fleet);
  if (ds->phase == 0) {
    if (st->welcomed < ds->b->o.agents && mu_mono_ms() < ds->phase_until) return;
    mu_info(LOG, "%zu of %zu agents welcomed; all ask for %s now", st->welcomed, ds->b->o.agents, ds->digest);
    mu_err err = {0};
    if (mu_fleet_request_bundle(ds->fleet, ds->digest, &err) != 0) {
      mu_error(LOG, "%s", err.msg);
      ds->timed_out = 1;
      dist_stop(ds);
      return;
    }
    ds->phase = 1;
    ds->phase_until = mu_mono_ms() + ds->b->o.timeout_ms;
    return;
  }
  if (ds->phase == 1 &&
      (st->bundles_done + st->bundle_errors >= st->bundle_requests || mu_mono_ms() >= ds->phase_until)) {
    ds->timed_out = st->bundles_done + st->bundle_errors < st->bundle_requests;
    dist_stop(ds);
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t vm_hwm_kib(pid_t pid) {
  char path[64], line[256];
  uint64_t v = 0;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmHWM: %llu", (unsigned long long *)&v) == 1) break;
  fclose(f);
  return v;
}

static int part_dist(bench *b) {
  mu_err err = {0};
  int eport = 0, pport = 0, lport = 0, mport = 0, rc = -1;
  if (mu_bench_free_port(&eport, &err) != 0 || mu_bench_free_port(&pport, &err) != 0 ||
      mu_bench_free_port(&lport, &err) != 0 || mu_bench_free_port(&mport, &err) != 0) {
    mu_error(LOG, "%s", err.msg);
    return -1;
  }
  char client[64], peer[64], cluster[96], edata[PATH_MAX + 16], elog[PATH_MAX + 16];
  char addr[64], metrics_addr[64], metrics_url[96], health_url[96], mlog[PATH_MAX + 16];
  char maxb[32], maxa[32];
  snprintf(client, sizeof client, "http://127.0.0.1:%d", eport);
  snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport);
  snprintf(cluster, sizeof cluster, "bench=%s", peer);
  snprintf(edata, sizeof edata, "%s/etcd", b->work);
  snprintf(elog, sizeof elog, "%s/etcd.log", b->work);
  snprintf(health_url, sizeof health_url, "%s/health", client);
  char *eargv[] = {b->etcd,      "--name",
                   "bench",      "--data-dir",
                   edata,        "--listen-client-urls",
                   client,       "--advertise-client-urls",
                   client,       "--listen-peer-urls",
                   peer,         "--initial-advertise-peer-urls",
                   peer,         "--initial-cluster",
                   cluster,      "--quota-backend-bytes",
                   "8589934592", NULL};
  b->etcd_pid = spawn_bg(eargv, elog);
  if (!wait_for(etcd_healthy, health_url, 20000)) {
    mu_error(LOG, "etcd did not become healthy; see %s", elog);
    return -1;
  }
  snprintf(addr, sizeof addr, "127.0.0.1:%d", lport);
  snprintf(metrics_addr, sizeof metrics_addr, "127.0.0.1:%d", mport);
  snprintf(metrics_url, sizeof metrics_url, "http://%s/metrics", metrics_addr);
  snprintf(mlog, sizeof mlog, "%s/musterd.log", b->work);
  uint64_t cap = b->o.bundle_bytes * 2 + (64u << 20);
  snprintf(maxb, sizeof maxb, "%llu", (unsigned long long)cap);
  snprintf(maxa, sizeof maxa, "%zu", b->o.agents + 16);
  char *margv[] = {b->musterd,
                   "--listen",
                   addr,
                   "--etcd",
                   client,
                   "--metrics-listen",
                   metrics_addr,
                   "--max-bundle-size",
                   maxb,
                   "--max-agents",
                   maxa,
                   "--heartbeat-timeout",
                   "120s",
                   "--log-level",
                   "warn",
                   "--insecure",
                   "--allow-unsigned-bundles",
                   NULL};
  b->musterd_pid = spawn_bg(margv, mlog);
  leader_probe lp = {b, addr};
  if (!wait_for(musterd_leads, &lp, 20000)) {
    mu_error(LOG, "musterd did not lead within 20s; see %s", mlog);
    return -1;
  }
  /* the bundle: random bytes (zstd cannot shrink them), packed unsigned; musterd takes it
   * with --allow-unsigned-bundles (the simulated agents do not check signatures) */
  char dir[PATH_MAX + 16], bundle[PATH_MAX + 32], plog[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/dist-tree", b->work);
  snprintf(bundle, sizeof bundle, "%s/dist.bundle", b->work);
  snprintf(plog, sizeof plog, "%s/push.log", b->work);
  uint64_t bytes = 0;
  size_t files = 0;
  mu_pack_opts po = {.name = "dist", .version = "1.0.0", .created_at = 1700000000};
  mu_unpack_limits lim;
  mu_unpack_limits_default(&lim);
  lim.max_archive_bytes = cap;
  po.limits = &lim;
  if (make_tree(dir, b->o.bundle_bytes, 1, &bytes, &files, &err) != 0 ||
      mu_bundle_pack(dir, &po, bundle, (char[MU_BUNDLE_DIGEST_SIZE]){0}, &err) != 0) {
    mu_error(LOG, "making the bundle: %s", err.msg);
    return -1;
  }
  uint8_t *data = NULL;
  size_t size = 0;
  if (mu_bundle_read_file(bundle, cap, &data, &size, &err) != 0) {
    mu_error(LOG, "%s", err.msg);
    return -1;
  }
  dist ds = {.b = b};
  mu_bundle_digest(data, size, ds.digest);
  free(data);
  double t0 = now_s();
  char *push[] = {b->muster, "--addr", addr, "-o", "json", "bundle", "push", bundle, NULL};
  if (run_cmd(push, plog) != 0) {
    mu_error(LOG, "muster bundle push failed; see %s", plog);
    return -1;
  }
  double push_s = now_s() - t0;
  mu_info(LOG, "pushed %s (%.1f MiB) in %.2fs", ds.digest, (double)size / 1048576.0, push_s);
  double reads_before = metric(metrics_url, "muster_bundle_store_read_bytes_total");

  uv_loop_t loop;
  uv_loop_init(&loop);
  if (mu_rpc_engine_new(&loop, &ds.engine, &err) != 0) {
    mu_error(LOG, "%s", err.msg);
    uv_loop_close(&loop);
    return -1;
  }
  mu_fleet_config fc = {.target = addr,
                        .agents = b->o.agents,
                        .agents_per_channel = b->o.per_channel,
                        .heartbeat_interval_ms = 5000,
                        .id_prefix = "bb"};
  if (mu_fleet_new(ds.engine, &fc, &ds.fleet, &err) != 0 || mu_fleet_connect(ds.fleet, &err) != 0) {
    mu_error(LOG, "fleet: %s", err.msg);
    if (ds.fleet != NULL) mu_fleet_stop(ds.fleet, on_fleet_stopped, &ds);
    else mu_rpc_engine_close(ds.engine, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    mu_fleet_free(ds.fleet);
    uv_loop_close(&loop);
    return -1;
  }
  uv_timer_init(&loop, &ds.tick);
  ds.tick.data = &ds;
  ds.phase_until = mu_mono_ms() + 30000;
  uv_timer_start(&ds.tick, on_tick, 5, 5);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  const mu_fleet_stats *st = mu_fleet_stats_get(ds.fleet);
  size_t n = 0;
  uint64_t *times = calloc(b->o.agents + 1, sizeof *times);
  for (size_t i = 0; times != NULL && i < b->o.agents; i++) {
    uint64_t t = mu_fleet_bundle_time_ns(ds.fleet, i);
    if (t > 0) times[n++] = t;
  }
  if (n > 0) qsort(times, n, sizeof *times, cmp_u64);
  usleep(1200 * 1000); /* musterd publishes /metrics every 500 ms */
  double read_bytes = metric(metrics_url, "muster_bundle_store_read_bytes_total");
  double reads = metric(metrics_url, "muster_bundle_store_reads_total");
  uint64_t hwm = vm_hwm_kib(b->musterd_pid);
  double mib = (double)size / 1048576.0;
  printf("dist_bundle: %.1f MiB (%s)\n", mib, ds.digest);
  printf("dist_push: %.2f s (%.1f MiB/s, muster bundle push into etcd)\n", push_s, mib / push_s);
  printf("dist_agents_done: %zu of %zu (errors %zu%s%s)\n", st->bundles_done, b->o.agents, st->bundle_errors,
         st->bundle_error[0] ? ": " : "", st->bundle_error);
  if (n > 0) {
    double total = (double)(st->bundle_last_done_ns - st->bundle_first_request_ns) / 1e6;
    printf("dist_per_agent_median: %.0f ms\n", (double)times[n / 2] / 1e6);
    printf("dist_per_agent_p99: %.0f ms\n", (double)times[(n * 99 + 99) / 100 - 1] / 1e6);
    printf("dist_total: %.0f ms (first request to the last agent's last byte)\n", total);
    printf("dist_throughput: %.1f MiB/s (agents x bundle / total)\n", (double)n * mib / (total / 1000.0));
  }
  printf("dist_bytes_received: %.1f MiB\n", (double)st->bundle_bytes / 1048576.0);
  if (read_bytes >= 0 && reads_before >= 0) {
    double factor = (read_bytes - reads_before) / (double)size;
    printf("dist_etcd_read: %.1f MiB in %.0f read(s) = %.2f x the bundle [target %.0f x: %s]\n",
           (read_bytes - reads_before) / 1048576.0, reads, factor, TARGET_READS,
           factor <= TARGET_READS + 1e-9 && factor > 0 ? "met" : "missed");
  } else {
    printf("dist_etcd_read: n/a (no /metrics from musterd)\n");
  }
  printf("dist_musterd_peak_rss: %.0f MiB\n", (double)hwm / 1024.0);
  rc = ds.timed_out || n == 0 ? -1 : 0;
  if (ds.timed_out) mu_error(LOG, "the distribution did not finish within --timeout");
  free(times);
  mu_fleet_free(ds.fleet);
  return rc;
}

/* ---- main ---- */

static int parse_size_flag(const char *flag, const char *text, uint64_t *ret, mu_err *err) {
  if (mu_size_parse(text, ret, err) != 0 || *ret < 4096)
    return mu_err_set(err, MU_EINVAL, "--%s: expected a size of at least 4K, got '%s'", flag, text);
  return 0;
}

static int parse_n(const char *flag, const char *text, size_t *ret, mu_err *err) {
  char *end = NULL;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > 100000)
    return mu_err_set(err, MU_EINVAL, "--%s: expected a count 1..100000, got '%s'", flag, text);
  *ret = (size_t)v;
  return 0;
}

static int parse_opts(int argc, char **argv, opts *o, mu_err *err) {
  static const struct option lo[] = {{"dir-size", required_argument, NULL, 'd'},
                                     {"runs", required_argument, NULL, 'r'},
                                     {"bundle-size", required_argument, NULL, 'b'},
                                     {"agents", required_argument, NULL, 'n'},
                                     {"agents-per-channel", required_argument, NULL, 'c'},
                                     {"timeout", required_argument, NULL, 't'},
                                     {"skip-pack", no_argument, NULL, 'P'},
                                     {"skip-dist", no_argument, NULL, 'D'},
                                     {"musterd", required_argument, NULL, 'm'},
                                     {"muster", required_argument, NULL, 'M'},
                                     {"etcd", required_argument, NULL, 'e'},
                                     {"work-dir", required_argument, NULL, 'w'},
                                     {"keep-work-dir", no_argument, NULL, 'k'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  *o = (opts){.dir_bytes = 200ull << 20,
              .bundle_bytes = 50ull << 20,
              .runs = 2,
              .agents = 100,
              .per_channel = 10,
              .timeout_ms = 300000};
  int c, idx = 0, rc = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
    switch (c) {
      case 'd': rc = parse_size_flag("dir-size", optarg, &o->dir_bytes, err); break;
      case 'b': rc = parse_size_flag("bundle-size", optarg, &o->bundle_bytes, err); break;
      case 'r': rc = parse_n("runs", optarg, &o->runs, err); break;
      case 'n': rc = parse_n("agents", optarg, &o->agents, err); break;
      case 'c': rc = parse_n("agents-per-channel", optarg, &o->per_channel, err); break;
      case 't':
        rc = mu_duration_parse(optarg, &o->timeout_ms, err);
        if (rc != 0) mu_err_prefix(err, "--timeout");
        break;
      case 'P': o->skip_pack = 1; break;
      case 'D': o->skip_dist = 1; break;
      case 'm': o->musterd_flag = optarg; break;
      case 'M': o->muster_flag = optarg; break;
      case 'e': o->etcd_flag = optarg; break;
      case 'w': o->work_flag = optarg; break;
      case 'k': o->keep = 1; break;
      case 'h': fputs(usage, stdout); exit(0);
      default: return mu_err_set(err, MU_EINVAL, "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (rc != 0) return rc;
  }
  if (optind < argc) return mu_err_set(err, MU_EINVAL, "unexpected argument '%s'", argv[optind]);
  return 0;
}

int main(int argc, char **argv) {
  bench b = {0};
  mu_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  if (parse_opts(argc, argv, &b.o, &err) != 0) {
    fprintf(stderr, "bundle_bench: %s\n%s", err.msg, usage);
    return 2;
  }
  if (!b.o.skip_dist &&
      (mu_bench_find_binary(b.o.musterd_flag, "musterd", "controlplane/musterd", argv[0], b.musterd, &err) != 0 ||
       mu_bench_find_binary(b.o.muster_flag, "muster", "cli/muster", argv[0], b.muster, &err) != 0)) {
    fprintf(stderr, "bundle_bench: %s\n", err.msg);
    return 1;
  }
  snprintf(b.etcd, sizeof b.etcd, "%s", b.o.etcd_flag ? b.o.etcd_flag : "/usr/bin/etcd");
  if (b.o.work_flag != NULL) {
    snprintf(b.work, sizeof b.work, "%s", b.o.work_flag);
    mkdir(b.work, 0755);
  } else {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(b.work, sizeof b.work, "%s/bundle_bench.XXXXXX", tmp);
    if (mkdtemp(b.work) == NULL) {
      fprintf(stderr, "bundle_bench: cannot create a work dir under %s: %s\n", tmp, strerror(errno));
      return 1;
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  mu_info(LOG, "work dir %s", b.work);
  int failed = 0;
  if (!b.o.skip_pack && part_pack(&b) != 0) failed = 1;
  if (!b.o.skip_dist && part_dist(&b) != 0) failed = 1;
  mu_bench_stop_child(b.musterd_pid, "musterd");
  mu_bench_stop_child(b.etcd_pid, "etcd");
  curl_global_cleanup();
  if (!b.o.keep) mu_bench_rm_tree(b.work);
  else printf("work dir kept: %s\n", b.work);
  return failed;
}
