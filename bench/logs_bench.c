/* bench/logs_bench: `muster logs` of a big output over mTLS, end to end with real processes.
 * Starts musterd and one muster-agent on loopback (a throwaway CA), runs a task that writes a
 * deterministic pseudo-random stream (AES-128-CTR of zeros, through `openssl enc`), and then
 * reads it back with `muster logs JOB web-1/run` several times, checking the SHA-256 of what
 * comes out against the generator's. It prints, per run and as medians: the throughput of
 * `muster logs` against `cat` of the agent's spool file in the same run (both read by a
 * reader that only counts; the byte-exact check is a run of its own, as hashing is slower
 * than either), the agent's and musterd's RSS while serving against their figure just
 * before, and once more with a reader slowed to --slow-mbps to show the backpressure (the
 * agent holds the read, nothing piles up).
 * Figures are printed as "name: value unit" lines; it fails (exit 1) only when the output is
 * not byte-exact or a process does not work, never on a figure (docs/benchmarks.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/pki_setup.h"
#include "bench/procstat.h"
#include "bench/setup.h"
#include "bench/stats.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#define LOG "logs_bench"
#define GEN                                                                     \
  "openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 " \
  "< /dev/zero 2>/dev/null | head -c %llu"

typedef struct opts {
  unsigned long long bytes;
  int runs;
  double slow_mbps;
  const char *musterd_flag, *agent_flag, *muster_flag, *work_flag;
  int keep;
} opts;

typedef struct bench {
  opts o;
  char musterd[PATH_MAX], agent[PATH_MAX], muster[PATH_MAX];
  char work[PATH_MAX], addr[64];
  mu_bench_pki pki;
  pid_t musterd_pid, agent_pid;
  char job[128];
} bench;

/* What one read of a child's stdout gave. */
typedef struct drained {
  unsigned long long bytes;
  char sha[65]; /* "" when not hashed */
  double secs;
  int status; /* the child's exit status, -1 if it died */
  uint64_t agent_rss_before_kib, musterd_rss_before_kib;
  uint64_t agent_rss_peak_kib, musterd_rss_peak_kib;
  uint64_t agent_cpu_ms, musterd_cpu_ms;
} drained;

static double now_s(void) { return (double)mu_mono_ms() / 1000.0; }

static pid_t spawn(char *const argv[], const char *log, int out_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(out_fd >= 0 ? out_fd : fd, 1);
    dup2(fd, 2);
  }
  setpgid(0, 0);
  execv(argv[0], argv);
  _exit(127);
}

static int wait_status(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static uint64_t rss_kib(pid_t pid) {
  mu_proc_mem m;
  return pid > 0 && mu_proc_mem_read(pid, &m, NULL) == 0 ? m.rss_kib : 0;
}

static uint64_t cpu_ms(pid_t pid) {
  uint64_t ms = 0;
  if (pid > 0) mu_proc_cpu_ms(pid, &ms, NULL);
  return ms;
}

/* Runs argv with stdout into a pipe read here: the count (and with hash the SHA-256) of what
 * came, the time to its end, the daemons' RSS before and at their peak (sampled every 20 ms);
 * slow_mbps > 0 reads no faster. */
static int drain(bench *b, char *const argv[], int hash, double slow_mbps, drained *d) {
  memset(d, 0, sizeof *d);
  d->agent_rss_before_kib = d->agent_rss_peak_kib = rss_kib(b->agent_pid);
  d->musterd_rss_before_kib = d->musterd_rss_peak_kib = rss_kib(b->musterd_pid);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  char log[PATH_MAX + 16];
  snprintf(log, sizeof log, "%s/clients.log", b->work);
  uint64_t a_cpu = cpu_ms(b->agent_pid), m_cpu = cpu_ms(b->musterd_pid);
  double t0 = now_s(), last_sample = 0;
  pid_t pid = spawn(argv, log, p[1]);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  static unsigned char buf[1 << 16];
  for (;;) {
    double t = now_s();
    if (t - last_sample >= 0.02) {
      last_sample = t;
      uint64_t a = rss_kib(b->agent_pid), m = rss_kib(b->musterd_pid);
      if (a > d->agent_rss_peak_kib) d->agent_rss_peak_kib = a;
      if (m > d->musterd_rss_peak_kib) d->musterd_rss_peak_kib = m;
    }
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    if (poll(&pfd, 1, 20) <= 0) continue;
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (hash) crypto_hash_sha256_update(&h, buf, (unsigned long long)n);
    d->bytes += (unsigned long long)n;
    if (slow_mbps > 0) {
      double due = t0 + (double)d->bytes / (slow_mbps * 1e6) - now_s();
      if (due > 0) usleep((useconds_t)(due * 1e6));
    }
  }
  close(p[0]);
  d->status = wait_status(pid);
  d->secs = now_s() - t0;
  d->agent_cpu_ms = cpu_ms(b->agent_pid) - a_cpu;
  d->musterd_cpu_ms = cpu_ms(b->musterd_pid) - m_cpu;
  unsigned char out[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&h, out);
  if (hash) sodium_bin2hex(d->sha, sizeof d->sha, out, sizeof out);
  return 0;
}

static int cli(bench *b, const char *out_file, char *const args[]) {
  char *argv[32] = {b->muster, "--addr",          b->addr, "--ca",          b->pki.ca_file,
                    "--cert",  b->pki.admin_cert, "--key", b->pki.admin_key};
  size_t n = 9;
  for (size_t i = 0; args[i] != NULL && n < 31; i++) argv[n++] = args[i];
  argv[n] = NULL;
  unlink(out_file);
  int fd = open(out_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = spawn(argv, out_file, fd);
  if (fd >= 0) close(fd);
  return pid < 0 ? -1 : wait_status(pid);
}

static int read_text(const char *path, char *buf, size_t size) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
  return 0;
}

static int agent_connected(bench *b) {
  char out[PATH_MAX + 16], text[8192];
  snprintf(out, sizeof out, "%s/agents.json", b->work);
  char *args[] = {"-o", "json", "agents", NULL};
  return cli(b, out, args) == 0 && read_text(out, text, sizeof text) == 0 && strstr(text, "AGENT_CONNECTED") != NULL;
}

static int start_cluster(bench *b, mu_err *err) {
  char dir[PATH_MAX + 16], spool[PATH_MAX + 16], log[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/pki", b->work);
  int rc = mu_bench_pki_make(&b->pki, dir, err);
  if (rc == 0) rc = mu_bench_pki_issue_files(&b->pki, "agent", "web-1", cert, key, err);
  int port = 0;
  if (rc == 0) rc = mu_bench_free_port(&port, err);
  if (rc != 0) return rc;
  snprintf(b->addr, sizeof b->addr, "127.0.0.1:%d", port);
  char *md[16] = {b->musterd, "--listen", b->addr, "--no-etcd"};
  size_t n = 4;
  n += mu_bench_pki_daemon_args(&b->pki, b->pki.server_cert, b->pki.server_key, md + n);
  md[n] = NULL;
  snprintf(log, sizeof log, "%s/musterd.log", b->work);
  b->musterd_pid = spawn(md, log, -1);
  snprintf(spool, sizeof spool, "%s/spool", b->work);
  mkdir(spool, 0755);
  char *ag[20] = {b->agent, "--control", b->addr, "--id", "web-1", "--spool-dir", spool};
  n = 7;
  n += mu_bench_pki_daemon_args(&b->pki, cert, key, ag + n);
  ag[n] = NULL;
  snprintf(log, sizeof log, "%s/agent.log", b->work);
  b->agent_pid = spawn(ag, log, -1);
  for (int i = 0; i < 150; i++) {
    if (agent_connected(b)) return 0;
    usleep(100 * 1000);
  }
  return mu_err_set(err, MU_ETIMEDOUT, "the agent did not connect within 15s (logs in %s)", b->work);
}

/* Submits the generator task and waits for it to end; its job id into b->job. */
static int run_task(bench *b, mu_err *err) {
  char path[PATH_MAX + 16], out[PATH_MAX + 16], gen[300], text[4096];
  snprintf(path, sizeof path, "%s/job.json", b->work);
  snprintf(out, sizeof out, "%s/submit.out", b->work);
  snprintf(gen, sizeof gen, GEN, b->o.bytes);
  FILE *f = fopen(path, "w");
  if (f == NULL) return mu_err_set(err, MU_EIO, "%s: %s", path, strerror(errno));
  fprintf(f,
          "{\"name\": \"logs-bench\", \"target\": {\"hosts\": [\"web-1\"]}, \"tasks\": "
          "[{\"name\": \"run\", \"timeout\": \"30m\", \"resources\": {\"output_limit\": "
          "\"%llu\"}, \"shell\": {\"script\": \"%s\"}}]}\n",
          b->o.bytes + 1, gen);
  fclose(f);
  char *args[] = {"submit", path, "--quiet", NULL};
  double t0 = now_s();
  int rc = cli(b, out, args);
  read_text(out, text, sizeof text);
  if (rc != 0) return mu_err_set(err, MU_EIO, "muster submit failed (%d): %s", rc, text);
  /* the summary: "job J succeeded: ..." */
  if (sscanf(text, "job %127s", b->job) != 1) sscanf(text, "%127s", b->job);
  printf("task_run: %.2f s (%llu bytes written by the task, through the agent's spool)\n", now_s() - t0, b->o.bytes);
  return 0;
}

static int find_spool_file(bench *b, char *ret, size_t size) {
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "ls %s/spool/output/*.log 2>/dev/null", b->work);
  FILE *p = popen(cmd, "r");
  if (p == NULL) return -1;
  int ok = fgets(ret, (int)size, p) != NULL;
  pclose(p);
  if (!ok) return -1;
  ret[strcspn(ret, "\n")] = '\0';
  return 0;
}

static double mbps(unsigned long long bytes, double secs) { return secs > 0 ? (double)bytes / secs / 1e6 : 0; }

static double mib(uint64_t kib) { return (double)kib / 1024.0; }

static double grew(uint64_t peak, uint64_t before) { return ((double)peak - (double)before) / 1024.0; }

static int same(const drained *got, const drained *want) {
  return got->status == 0 && got->bytes == want->bytes && strcmp(got->sha, want->sha) == 0;
}

static int bench_logs(bench *b) {
  mu_err err = {0};
  char gen[300], spool[PATH_MAX];
  snprintf(gen, sizeof gen, GEN, b->o.bytes);
  if (start_cluster(b, &err) != 0) {
    fprintf(stderr, LOG ": %s\n", err.msg);
    return 1;
  }
  sleep(1);
  uint64_t agent_fresh = rss_kib(b->agent_pid);
  if (run_task(b, &err) != 0) {
    fprintf(stderr, LOG ": %s\n", err.msg);
    return 1;
  }
  if (find_spool_file(b, spool, sizeof spool) != 0) {
    fprintf(stderr, LOG ": no spool file under %s/spool/output\n", b->work);
    return 1;
  }
  drained want;
  char *sh[] = {"/bin/sh", "-c", gen, NULL};
  drain(b, sh, 1, 0, &want);
  sleep(1); /* the agent settles after the task */
  char *logs[] = {b->muster, "--addr",         b->addr, "--ca", b->pki.ca_file, "--cert", b->pki.admin_cert,
                  "--key",   b->pki.admin_key, "logs",  b->job, "web-1/run",    NULL};
  char *cat[] = {"/bin/cat", spool, NULL};
  printf("agent_rss_fresh: %.1f MiB (before the task)\n", mib(agent_fresh));
  drained x;
  drain(b, logs, 1, 0, &x);
  int failed = !same(&x, &want);
  printf("output: %llu bytes, sha256 %s\n", want.bytes, want.sha);
  printf("byte_exact: %s (muster logs: %llu bytes, exit %d, sha256 %s)\n", failed ? "no" : "yes", x.bytes, x.status,
         x.sha);
  double *l_mbps = calloc((size_t)b->o.runs, sizeof *l_mbps);
  double *c_mbps = calloc((size_t)b->o.runs, sizeof *c_mbps);
  double a_grew = grew(x.agent_rss_peak_kib, x.agent_rss_before_kib);
  double m_grew = grew(x.musterd_rss_peak_kib, x.musterd_rss_before_kib);
  uint64_t a_before = x.agent_rss_before_kib, m_before = x.musterd_rss_before_kib;
  for (int r = 0; r < b->o.runs; r++) {
    drained l, c;
    drain(b, logs, 0, 0, &l);
    drain(b, cat, 0, 0, &c);
    failed |= l.status != 0 || l.bytes != want.bytes;
    l_mbps[r] = mbps(l.bytes, l.secs);
    c_mbps[r] = mbps(c.bytes, c.secs);
    if (grew(l.agent_rss_peak_kib, l.agent_rss_before_kib) > a_grew)
      a_grew = grew(l.agent_rss_peak_kib, l.agent_rss_before_kib);
    if (grew(l.musterd_rss_peak_kib, l.musterd_rss_before_kib) > m_grew)
      m_grew = grew(l.musterd_rss_peak_kib, l.musterd_rss_before_kib);
    printf(
        "run_%d: logs %.0f MB/s (%.2f s, %llu bytes, exit %d), cat of the spool file %.0f MB/s "
        "(%llu bytes), agent cpu %llu ms, musterd cpu %llu ms\n",
        r + 1, l_mbps[r], l.secs, l.bytes, l.status, c_mbps[r], c.bytes, (unsigned long long)l.agent_cpu_ms,
        (unsigned long long)l.musterd_cpu_ms);
  }
  double lm = mu_bench_percentile(l_mbps, (size_t)b->o.runs, 50);
  double cm = mu_bench_percentile(c_mbps, (size_t)b->o.runs, 50);
  printf("logs_throughput_median: %.0f MB/s  [target >= 200 MB/s: %s]\n", lm, lm >= 200 ? "met" : "missed");
  printf("cat_spool_file_median: %.0f MB/s\n", cm);
  printf("logs_vs_cat: %.3f x\n", cm > 0 ? lm / cm : 0);
  printf("agent_rss_before_logs: %.1f MiB\n", mib(a_before));
  printf("agent_rss_growth_serving: %.1f MiB (the largest of the runs)  [target < 20 MiB: %s]\n", a_grew,
         a_grew < 20 ? "met" : "missed");
  printf("musterd_rss_before_logs: %.1f MiB\n", mib(m_before));
  printf("musterd_rss_growth_serving: %.1f MiB\n", m_grew);
  if (b->o.slow_mbps > 0) {
    drained s;
    drain(b, logs, 1, b->o.slow_mbps, &s);
    failed |= !same(&s, &want);
    printf("slow_reader: %.0f MB/s asked, %.0f MB/s got, %s\n", b->o.slow_mbps, mbps(s.bytes, s.secs),
           same(&s, &want) ? "byte-exact" : "NOT byte-exact");
    printf("slow_reader_agent_rss_growth: %.1f MiB\n", grew(s.agent_rss_peak_kib, s.agent_rss_before_kib));
    printf("slow_reader_musterd_rss_growth: %.1f MiB\n", grew(s.musterd_rss_peak_kib, s.musterd_rss_before_kib));
  }
  free(l_mbps);
  free(c_mbps);
  return failed;
}

static const char usage[] =
    "usage: logs_bench [--bytes N] [--runs N] [--slow-mbps R] [--musterd PATH] [--agent PATH]\n"
    "                  [--muster PATH] [--work DIR] [--keep]\n"
    "  --bytes N      the task's output (default 200000000)\n"
    "  --runs N       `muster logs` and `cat` runs (default 3)\n"
    "  --slow-mbps R  one more read no faster than R MB/s (default 50; 0 skips it)\n";

int main(int argc, char **argv) {
  bench b = {.o = {.bytes = 200000000ull, .runs = 3, .slow_mbps = 50}};
  static const struct option lo[] = {{"bytes", required_argument, NULL, 'b'},
                                     {"runs", required_argument, NULL, 'r'},
                                     {"slow-mbps", required_argument, NULL, 's'},
                                     {"musterd", required_argument, NULL, 'm'},
                                     {"agent", required_argument, NULL, 'a'},
                                     {"muster", required_argument, NULL, 'M'},
                                     {"work", required_argument, NULL, 'w'},
                                     {"keep", no_argument, NULL, 'k'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (c) {
      case 'b': b.o.bytes = strtoull(optarg, NULL, 10); break;
      case 'r': b.o.runs = atoi(optarg); break;
      case 's': b.o.slow_mbps = atof(optarg); break;
      case 'm': b.o.musterd_flag = optarg; break;
      case 'a': b.o.agent_flag = optarg; break;
      case 'M': b.o.muster_flag = optarg; break;
      case 'w': b.o.work_flag = optarg; break;
      case 'k': b.o.keep = 1; break;
      case 'h': fputs(usage, stdout); return 0;
      default: fputs(usage, stderr); return 2;
    }
  }
  if (b.o.bytes == 0 || b.o.runs < 1 || b.o.slow_mbps < 0) {
    fprintf(stderr, LOG ": --bytes and --runs must be positive\n%s", usage);
    return 2;
  }
  mu_err err = {0};
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0 ||
      mu_bench_find_binary(b.o.musterd_flag, "musterd", "controlplane/musterd", argv[0], b.musterd, &err) != 0 ||
      mu_bench_find_binary(b.o.agent_flag, "agent", "agent/muster-agent", argv[0], b.agent, &err) != 0 ||
      mu_bench_find_binary(b.o.muster_flag, "muster", "cli/muster", argv[0], b.muster, &err) != 0) {
    fprintf(stderr, LOG ": %s\n", err.msg[0] ? err.msg : "libsodium did not start");
    return 1;
  }
  if (b.o.work_flag != NULL) {
    snprintf(b.work, sizeof b.work, "%s", b.o.work_flag);
    mkdir(b.work, 0755);
  } else {
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(b.work, sizeof b.work, "%s/logs_bench.XXXXXX", tmp);
    if (mkdtemp(b.work) == NULL) {
      fprintf(stderr, LOG ": cannot create a work dir under %s: %s\n", tmp, strerror(errno));
      return 1;
    }
  }
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  printf("machine: %ld cores online; musterd, the agent, the CLI and the reader share them\n", cores);
  int failed = bench_logs(&b);
  mu_bench_stop_child(b.agent_pid, "muster-agent");
  mu_bench_stop_child(b.musterd_pid, "musterd");
  mu_bench_pki_free(&b.pki);
  if (!b.o.keep) mu_bench_rm_tree(b.work);
  else printf("work dir kept: %s\n", b.work);
  return failed;
}
