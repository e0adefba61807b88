/* Starts, stops, restarts and cleans up a real single-node etcd for tests: picks free loopback
 * ports, makes a temporary data dir, fork/execs /usr/bin/etcd with fast election timers (so it
 * is healthy in well under a second) and polls /health with blocking libcurl calls. */
#define _GNU_SOURCE
#include "integration/etcd_harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/base/clock.h"

#define MAX_EXTRA 32

struct mu_etcd_harness {
  char etcd_path[256];
  char *extra[MAX_EXTRA + 1];
  int64_t start_timeout_ms, stop_grace_ms;
  char dir[512]; /* temporary root, removed by free */
  char data_dir[600];
  char log_path[600];
  char endpoint[64];
  int client_port, peer_port;
  pid_t pid;
  bool curl_inited;
};

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int port = -1;
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

static void log_tail(const mu_etcd_harness *h, char *buf, size_t cap) {
  buf[0] = '\0';
  FILE *f = fopen(h->log_path, "r");
  if (f == NULL) return;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  long from = size > (long)cap - 1 ? size - (long)cap + 1 : 0;
  fseek(f, from, SEEK_SET);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static size_t sink(char *data, size_t size, size_t nmemb, void *ud) {
  char *buf = ud;
  size_t n = size * nmemb, have = strlen(buf);
  if (have + n < 256) {
    memcpy(buf + have, data, n);
    buf[have + n] = '\0';
  }
  return n;
}

static bool healthy(const mu_etcd_harness *h) {
  char url[128], body[256] = "";
  CURL *e = curl_easy_init();
  if (e == NULL) return false;
  snprintf(url, sizeof(url), "%s/health", h->endpoint);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 500L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)body);
  CURLcode cc = curl_easy_perform(e);
  curl_easy_cleanup(e);
  return cc == CURLE_OK && strstr(body, "\"health\":\"true\"") != NULL;
}

static int spawn(mu_etcd_harness *h, mu_err *err) {
  char client[64], peer[64], cluster[96];
  snprintf(client, sizeof(client), "http://127.0.0.1:%d", h->client_port);
  snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", h->peer_port);
  snprintf(cluster, sizeof(cluster), "mu=%s", peer);
  snprintf(h->endpoint, sizeof(h->endpoint), "%s", client);
  const char *base[] = {h->etcd_path, "--name",
                        "mu",         "--data-dir",
                        h->data_dir,  "--listen-client-urls",
                        client,       "--advertise-client-urls",
                        client,       "--listen-peer-urls",
                        peer,         "--initial-advertise-peer-urls",
                        peer,         "--initial-cluster",
                        cluster,      "--heartbeat-interval",
                        "10",         "--election-timeout",
                        "100",        "--logger",
                        "zap",        "--log-level",
                        "warn"};
  size_t nb = sizeof(base) / sizeof(base[0]);
  char *argv[sizeof(base) / sizeof(base[0]) + MAX_EXTRA + 1];
  size_t n = 0;
  for (size_t i = 0; i < nb; i++) argv[n++] = (char *)base[i];
  for (size_t i = 0; h->extra[i] != NULL; i++) argv[n++] = h->extra[i];
  argv[n] = NULL;
  int logfd = open(h->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) return mu_err_set(err, MU_EIO, "etcd harness: open %s: %m", h->log_path);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(logfd);
    return mu_err_set(err, MU_EIO, "etcd harness: fork: %m");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
    if (getppid() != parent) _exit(127);
    dup2(logfd, 1);
    dup2(logfd, 2);
    int nullfd = open("/dev/null", O_RDONLY);
    if (nullfd >= 0) dup2(nullfd, 0);
    execv(h->etcd_path, argv);
    _exit(127);
  }
  close(logfd);
  h->pid = pid;
  return 0;
}

/* Waits for health; on failure stops the child and quotes its log. */
static int wait_healthy(mu_etcd_harness *h, mu_err *err) {
  int64_t deadline = mu_mono_ms() + h->start_timeout_ms;
  while (mu_mono_ms() < deadline) {
    int status = 0;
    if (waitpid(h->pid, &status, WNOHANG) == h->pid) {
      char tail[300];
      h->pid = 0;
      log_tail(h, tail, sizeof(tail));
      return mu_err_set(err, MU_EIO, "etcd harness: etcd exited (status %d) before healthy: %s", status, tail);
    }
    if (healthy(h)) return 0;
    sleep_ms(30);
  }
  mu_etcd_harness_stop(h, true, NULL);
  return mu_err_set(err, MU_ETIMEDOUT, "etcd harness: %s not healthy within %lld ms", h->endpoint,
                    (long long)h->start_timeout_ms);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

int mu_etcd_harness_start(const mu_etcd_harness_opts *opts, mu_etcd_harness **ret_h, mu_err *err) {
  mu_etcd_harness *h = calloc(1, sizeof(*h));
  const char *tmp = getenv("TEST_TMPDIR");
  int rc;
  if (h == NULL) return mu_err_set(err, MU_ENOMEM, "etcd harness: out of memory");
  const char *bin = getenv("MU_ETCD_BIN");
  if (opts != NULL && opts->etcd_path != NULL) bin = opts->etcd_path;
  snprintf(h->etcd_path, sizeof(h->etcd_path), "%s", bin != NULL ? bin : "/usr/bin/etcd");
  h->start_timeout_ms = opts != NULL && opts->start_timeout_ms > 0 ? opts->start_timeout_ms : 15000;
  h->stop_grace_ms = opts != NULL && opts->stop_grace_ms > 0 ? opts->stop_grace_ms : 5000;
  for (size_t i = 0; opts != NULL && opts->extra_args != NULL && opts->extra_args[i] != NULL; i++) {
    if (i == MAX_EXTRA) {
      rc = mu_err_set(err, MU_EINVAL, "etcd harness: more than %d extra args", MAX_EXTRA);
      goto fail;
    }
    h->extra[i] = strdup(opts->extra_args[i]);
    if (h->extra[i] == NULL) {
      rc = mu_err_set(err, MU_ENOMEM, "etcd harness: out of memory");
      goto fail;
    }
  }
  if (access(h->etcd_path, X_OK) != 0) {
    rc = mu_err_set(err, MU_ENOENT,
                    "etcd harness: %s is not executable (apt-get install "
                    "etcd-server)",
                    h->etcd_path);
    goto fail;
  }
  snprintf(h->dir, sizeof(h->dir), "%s/mu-etcd-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
  if (mkdtemp(h->dir) == NULL) {
    rc = mu_err_set(err, MU_EIO, "etcd harness: mkdtemp %s: %m", h->dir);
    h->dir[0] = '\0';
    goto fail;
  }
  snprintf(h->data_dir, sizeof(h->data_dir), "%s/data", h->dir);
  snprintf(h->log_path, sizeof(h->log_path), "%s/etcd.log", h->dir);
  h->curl_inited = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  /* A port picked here may be taken before etcd binds it: retry with fresh ones. */
  for (int attempt = 0;; attempt++) {
    h->client_port = free_port();
    h->peer_port = free_port();
    if (h->client_port <= 0 || h->peer_port <= 0 || h->client_port == h->peer_port) continue;
    rc = spawn(h, err);
    if (rc == 0) rc = wait_healthy(h, err);
    if (rc == 0 || attempt == 2) break;
    nftw(h->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  if (rc != 0) goto fail;
  *ret_h = h;
  return 0;
fail:
  mu_etcd_harness_free(h);
  return rc;
}

const char *mu_etcd_harness_endpoint(const mu_etcd_harness *h) { return h->endpoint; }

const char *mu_etcd_harness_data_dir(const mu_etcd_harness *h) { return h->data_dir; }

pid_t mu_etcd_harness_pid(const mu_etcd_harness *h) { return h->pid; }

int mu_etcd_harness_stop(mu_etcd_harness *h, bool hard, mu_err *err) {
  int status = 0;
  if (h->pid <= 0) return 0;
  kill(h->pid, hard ? SIGKILL : SIGTERM);
  kill(h->pid, SIGCONT); /* a paused etcd must run to act on SIGTERM */
  int64_t deadline = mu_mono_ms() + h->stop_grace_ms;
  for (;;) {
    pid_t r = waitpid(h->pid, &status, WNOHANG);
    if (r == h->pid || r < 0) break;
    if (mu_mono_ms() >= deadline) {
      kill(h->pid, SIGKILL);
      if (waitpid(h->pid, &status, 0) < 0) {
        h->pid = 0;
        return mu_err_set(err, MU_EIO, "etcd harness: waitpid: %m");
      }
      break;
    }
    sleep_ms(10);
  }
  h->pid = 0;
  return 0;
}

int mu_etcd_harness_pause(mu_etcd_harness *h, mu_err *err) {
  int status = 0;
  if (h->pid <= 0) return mu_err_set(err, MU_EINVAL, "etcd harness: etcd is not running");
  kill(h->pid, SIGSTOP);
  if (waitpid(h->pid, &status, WUNTRACED) != h->pid || !WIFSTOPPED(status)) {
    return mu_err_set(err, MU_EIO, "etcd harness: etcd did not stop (status %d)", status);
  }
  return 0;
}

int mu_etcd_harness_resume(mu_etcd_harness *h, mu_err *err) {
  int status = 0;
  if (h->pid <= 0) return mu_err_set(err, MU_EINVAL, "etcd harness: etcd is not running");
  kill(h->pid, SIGCONT);
  if (waitpid(h->pid, &status, WCONTINUED) != h->pid || !WIFCONTINUED(status)) {
    return mu_err_set(err, MU_EIO, "etcd harness: etcd did not continue (status %d)", status);
  }
  return 0;
}

int mu_etcd_harness_restart(mu_etcd_harness *h, mu_err *err) {
  int rc = mu_etcd_harness_stop(h, false, err);
  if (rc != 0) return rc;
  rc = spawn(h, err);
  if (rc != 0) return rc;
  return wait_healthy(h, err);
}

void mu_etcd_harness_free(mu_etcd_harness *h) {
  if (h == NULL) return;
  mu_etcd_harness_stop(h, true, NULL);
  if (h->dir[0] != '\0') nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  for (size_t i = 0; i < MAX_EXTRA && h->extra[i] != NULL; i++) free(h->extra[i]);
  if (h->curl_inited) curl_global_cleanup();
  free(h);
}

int mu_etcd_harness_group_setup(void **state) {
  mu_etcd_harness *h = NULL;
  mu_err err = {0};
  if (mu_etcd_harness_start(NULL, &h, &err) != 0) {
    fprintf(stderr, "etcd harness: %s\n", err.msg);
    return -1;
  }
  *state = h;
  return 0;
}

int mu_etcd_harness_group_teardown(void **state) {
  mu_etcd_harness_free(*state);
  return 0;
}
