/* `muster dev`: a local development cluster in the foreground — a single-node etcd (Debian's
 * /usr/bin/etcd, data under the state dir), musterd on it and N agents — each a real child
 * process with its log in the state dir. It waits until the control plane leads and every
 * agent is connected, says where everything is, and stops them all (reverse order, TERM,
 * then KILL after a grace) on Ctrl-C, SIGTERM, or when one of them dies. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/dev_pki.h"
#include "lib/base/clock.h"
#include "muster/v1/admin.pb-c.h"

#define DEV_MAX_AGENTS 64
#define DEV_MAX_CHILDREN (DEV_MAX_AGENTS + 2)
#define DEV_READY_MS 30000
#define DEV_STOP_GRACE_MS 10000

static const char dev_usage[] =
    "usage: muster dev [--agents N] [--state-dir DIR] [--no-etcd] [--etcd-bin PATH]\n"
    "                  [--plugin-dir DIR]\n"
    "\n"
    "Runs a local cluster in the foreground: a single-node etcd (data in DIR/etcd), musterd\n"
    "on --addr (default 127.0.0.1:7400) and N agents (default 3: dev-1..dev-N, labels\n"
    "role=dev,idx=I), each with its log in DIR (default .state/dev). Ctrl-C stops them all.\n"
    "--no-etcd keeps the control plane's state in memory instead. musterd and muster-agent\n"
    "are found beside this binary (installed) or in the Bazel tree. --plugin-dir is passed\n"
    "on to every agent (by default they find the plugins that ship with Muster themselves).\n";

typedef struct dev_child {
  char name[32];
  pid_t pid;
} dev_child;

typedef struct dev_cluster {
  mu_dev_pki pki;
  dev_child children[DEV_MAX_CHILDREN];
  size_t n;
  char state_dir[PATH_MAX];
  char musterd[PATH_MAX];
  char agent[PATH_MAX];
  const char *plugin_dir; /* --plugin-dir for the agents, or NULL; borrowed from argv */
} dev_cluster;

static volatile sig_atomic_t dev_stop_signal;

static void on_stop_signal(int sig) { dev_stop_signal = sig; }

/* The binary at rel (e.g. "controlplane/musterd") for the layout this CLI runs from: beside
 * it (an install puts all three in one bin dir), or the Bazel tree (bazel-bin/cli/muster). */
static int find_sibling(const char *base, const char *rel, char *out, size_t size) {
  char self[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return -1;
  self[len] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  snprintf(out, size, "%s/%s", self, base);
  if (access(out, X_OK) == 0) return 0;
  snprintf(out, size, "%s/../%s", self, rel);
  return access(out, X_OK) == 0 ? 0 : -1;
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
    port = ntohs(sa.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

/* Starts argv with stdout and stderr to DIR/<name>.log; 0 or -1 (message printed). */
static int dev_spawn(dev_cluster *c, const char *name, char *const argv[]) {
  char log[PATH_MAX + 40];
  snprintf(log, sizeof log, "%s/%s.log", c->state_dir, name);
  int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    fprintf(stderr, "muster dev: %s: %s\n", log, strerror(errno));
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0); /* out of the terminal's group: Ctrl-C reaches us, we stop them in order */
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(fd);
  if (pid < 0) {
    fprintf(stderr, "muster dev: fork: %s\n", strerror(errno));
    return -1;
  }
  dev_child *ch = &c->children[c->n++];
  snprintf(ch->name, sizeof ch->name, "%s", name);
  ch->pid = pid;
  return 0;
}

/* The name of a child that has exited (reaped here), or NULL while all run. */
static const char *dev_dead_child(dev_cluster *c, int *ret_status) {
  for (size_t i = 0; i < c->n; i++) {
    if (c->children[i].pid <= 0) continue;
    if (waitpid(c->children[i].pid, ret_status, WNOHANG) == c->children[i].pid) {
      c->children[i].pid = 0;
      return c->children[i].name;
    }
  }
  return NULL;
}

static void dev_stop_all(dev_cluster *c) {
  for (size_t i = c->n; i-- > 0;) {
    dev_child *ch = &c->children[i];
    if (ch->pid <= 0) continue;
    kill(ch->pid, SIGTERM);
    int64_t deadline = mu_mono_ms() + DEV_STOP_GRACE_MS;
    while (waitpid(ch->pid, NULL, WNOHANG) == 0) {
      if (mu_mono_ms() > deadline) {
        fprintf(stderr, "muster dev: %s did not stop within %ds; killing it\n", ch->name, DEV_STOP_GRACE_MS / 1000);
        kill(ch->pid, SIGKILL);
        waitpid(ch->pid, NULL, 0);
        break;
      }
      nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000}, NULL);
    }
    ch->pid = 0;
  }
}

/* 1 when the control plane answers as a healthy leader with want agents connected. */
static int dev_ready(const mu_cli_opts *opts, uint32_t want) {
  Muster__V1__GetClusterRequest req = MUSTER__V1__GET_CLUSTER_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/GetCluster", &req.base, &muster__v1__cluster__descriptor, &reply, &err) != 0)
    return 0;
  const Muster__V1__Cluster *cl = (const Muster__V1__Cluster *)reply;
  int ok = cl->leader && cl->healthy && cl->agents_connected >= want;
  protobuf_c_message_free_unpacked(reply, NULL);
  return ok;
}

static int dev_parse(int argc, char **argv, long *ret_agents, const char **ret_state, int *ret_no_etcd,
                     const char **ret_etcd_bin, const char **ret_plugin_dir) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(dev_usage, stdout);
      exit(0);
    } else if (strcmp(argv[i], "--agents") == 0 && i + 1 < argc) {
      char *end = NULL;
      *ret_agents = strtol(argv[++i], &end, 10);
      if (*end != '\0' || *ret_agents < 0 || *ret_agents > DEV_MAX_AGENTS) {
        fprintf(stderr, "muster dev: --agents: expected 0..%d, got '%s'\n", DEV_MAX_AGENTS, argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc) {
      *ret_state = argv[++i];
    } else if (strcmp(argv[i], "--etcd-bin") == 0 && i + 1 < argc) {
      *ret_etcd_bin = argv[++i];
    } else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc) {
      *ret_plugin_dir = argv[++i];
    } else if (strcmp(argv[i], "--no-etcd") == 0) {
      *ret_no_etcd = 1;
    } else {
      fprintf(stderr, "muster dev: unexpected argument '%s'\n%s", argv[i], dev_usage);
      return 2;
    }
  }
  return 0;
}

/* Starts etcd (unless no_etcd) and musterd; fills etcd_url. 0 or -1 (message printed). */
static int dev_start_control(dev_cluster *c, const mu_cli_opts *opts, int no_etcd, const char *etcd_bin, char *etcd_url,
                             size_t url_size) {
  char data[PATH_MAX + 8], listen_client[64], listen_peer[64], cluster[96];
  if (!no_etcd) {
    int cport = free_port(), pport = free_port();
    if (cport < 0 || pport < 0) {
      fprintf(stderr, "muster dev: no free loopback port for etcd\n");
      return -1;
    }
    snprintf(data, sizeof data, "%s/etcd", c->state_dir);
    snprintf(listen_client, sizeof listen_client, "http://127.0.0.1:%d", cport);
    snprintf(listen_peer, sizeof listen_peer, "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof cluster, "dev=%s", listen_peer);
    snprintf(etcd_url, url_size, "%s", listen_client);
    char *argv[] = {(char *)etcd_bin,
                    "--name",
                    "dev",
                    "--data-dir",
                    data,
                    "--listen-client-urls",
                    listen_client,
                    "--advertise-client-urls",
                    listen_client,
                    "--listen-peer-urls",
                    listen_peer,
                    "--initial-advertise-peer-urls",
                    listen_peer,
                    "--initial-cluster",
                    cluster,
                    NULL};
    if (access(etcd_bin, X_OK) != 0) {
      fprintf(stderr,
              "muster dev: %s: not found (Debian's etcd-server, or --etcd-bin, or "
              "--no-etcd)\n",
              etcd_bin);
      return -1;
    }
    if (dev_spawn(c, "etcd", argv) != 0) return -1;
  }
  char crt[PATH_MAX + 32], key[PATH_MAX + 32];
  snprintf(crt, sizeof crt, "%s.crt", c->pki.server);
  snprintf(key, sizeof key, "%s.key", c->pki.server);
  char *argv[] = {c->musterd,
                  "--listen",
                  (char *)opts->addr,
                  "--state-dir",
                  c->state_dir,
                  "--tls-ca",
                  c->pki.ca,
                  "--tls-cert",
                  crt,
                  "--tls-key",
                  key,
                  no_etcd ? "--no-etcd" : "--etcd",
                  no_etcd ? NULL : etcd_url,
                  NULL};
  return dev_spawn(c, "musterd", argv);
}

int mu_cmd_dev(const mu_cli_opts *opts, int argc, char **argv) {
  long agents = 3;
  const char *state = ".state/dev", *etcd_bin = "/usr/bin/etcd", *plugin_dir = NULL;
  int no_etcd = 0, rc;
  rc = dev_parse(argc, argv, &agents, &state, &no_etcd, &etcd_bin, &plugin_dir);
  if (rc != 0) return rc;
  if (strchr(opts->addr, ',') != NULL) {
    fprintf(stderr, "muster dev: --addr must be one HOST:PORT to listen on, got '%s'\n", opts->addr);
    return 2;
  }
  dev_cluster *c = calloc(1, sizeof *c);
  if (c == NULL) return 1;
  c->plugin_dir = plugin_dir;
  if (find_sibling("musterd", "controlplane/musterd", c->musterd, sizeof c->musterd) != 0 ||
      find_sibling("muster-agent", "agent/muster-agent", c->agent, sizeof c->agent) != 0) {
    fprintf(stderr,
            "muster dev: musterd and muster-agent are not beside this binary nor in "
            "its Bazel tree (build //controlplane:musterd //agent:muster-agent)\n");
    free(c);
    return 1;
  }
  char mkdirs[PATH_MAX + 16];
  snprintf(mkdirs, sizeof mkdirs, "%s", state);
  for (char *p = mkdirs + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      mkdir(mkdirs, 0755);
      *p = '/';
    }
  if (mkdir(state, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "muster dev: state dir %s: %s\n", state, strerror(errno));
    free(c);
    return 1;
  }
  if (realpath(state, c->state_dir) == NULL) snprintf(c->state_dir, sizeof c->state_dir, "%s", state);
  mu_err perr = {0};
  if (mu_dev_pki_prepare(c->state_dir, opts->addr, &c->pki, &perr) != 0) {
    fprintf(stderr, "muster dev: certificates in %s/pki: %s\n", c->state_dir, perr.msg);
    free(c);
    return 1;
  }
  /* the CLI's own calls (readiness) go over mTLS with the dev admin certificate */
  char admin_crt[PATH_MAX + 32], admin_key[PATH_MAX + 32];
  snprintf(admin_crt, sizeof admin_crt, "%s.crt", c->pki.admin);
  snprintf(admin_key, sizeof admin_key, "%s.key", c->pki.admin);
  mu_cli_opts dev_opts = *opts;
  dev_opts.ca = c->pki.ca;
  dev_opts.cert = admin_crt;
  dev_opts.key = admin_key;
  dev_opts.token = NULL;
  opts = &dev_opts;
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  char etcd_url[80] = "";
  rc = 1;
  if (dev_start_control(c, opts, no_etcd, etcd_bin, etcd_url, sizeof etcd_url) != 0) goto out;
  for (long i = 1; i <= agents; i++) {
    char id[32], labels[64], spool[PATH_MAX + 40];
    snprintf(id, sizeof id, "dev-%ld", i);
    snprintf(labels, sizeof labels, "role=dev,idx=%ld", i);
    snprintf(spool, sizeof spool, "%s/%s", c->state_dir, id);
    mkdir(spool, 0750);
    char prefix[PATH_MAX + 48], crt[PATH_MAX + 64], key[PATH_MAX + 64];
    if (mu_dev_pki_agent(&c->pki, id, prefix, sizeof prefix, &perr) != 0) {
      fprintf(stderr, "muster dev: certificate for %s: %s\n", id, perr.msg);
      goto out;
    }
    snprintf(crt, sizeof crt, "%s.crt", prefix);
    snprintf(key, sizeof key, "%s.key", prefix);
    char *av[] = {c->agent, "--control", (char *)opts->addr, "--id",       id,  "--labels",  labels, "--spool-dir",
                  spool,    "--tls-ca",  c->pki.ca,          "--tls-cert", crt, "--tls-key", key,    NULL,
                  NULL,     NULL};
    if (c->plugin_dir != NULL) {
      av[15] = "--plugin-dir";
      av[16] = (char *)c->plugin_dir;
    }
    if (dev_spawn(c, id, av) != 0) goto out;
  }
  int64_t deadline = mu_mono_ms() + DEV_READY_MS;
  int status = 0;
  const char *dead = NULL;
  while (!dev_ready(opts, (uint32_t)agents)) {
    if (dev_stop_signal) break;
    dead = dev_dead_child(c, &status);
    if (dead != NULL) break;
    if (mu_mono_ms() > deadline) {
      fprintf(stderr, "muster dev: the cluster was not ready within %ds; see the logs in %s\n", DEV_READY_MS / 1000,
              c->state_dir);
      goto out;
    }
    nanosleep(&(struct timespec){.tv_nsec = 100 * 1000000}, NULL);
  }
  if (dead == NULL && !dev_stop_signal) {
    printf("muster dev: control plane %s (%s), %ld agent%s (dev-1..dev-%ld)\n", opts->addr,
           no_etcd ? "state in memory" : etcd_url, agents, agents == 1 ? "" : "s", agents);
    printf("muster dev: mTLS with a throwaway CA in %s/pki; logs and data in %s\n", c->state_dir, c->state_dir);
    printf(
        "muster dev: in another terminal:\n  source %s/env   # or:\n"
        "  export MUSTER_ADDR=%s MUSTER_CA=%s MUSTER_CERT=%s MUSTER_KEY=%s\n"
        "  muster agents\n",
        c->state_dir, opts->addr, c->pki.ca, admin_crt, admin_key);
    printf("muster dev: Ctrl-C stops everything\n");
    fflush(stdout);
    while (!dev_stop_signal && (dead = dev_dead_child(c, &status)) == NULL)
      nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000}, NULL);
  }
  if (dead != NULL) {
    fprintf(stderr, "muster dev: %s exited (%s %d); see %s/%s.log; stopping the rest\n", dead,
            WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
            c->state_dir, dead);
  } else {
    rc = 0;
  }
out:
  dev_stop_all(c);
  if (rc == 0) printf("muster dev: stopped\n");
  free(c);
  return rc;
}
