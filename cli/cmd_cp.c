/* `muster cp`: files to many hosts, and back (pdcp / rpdcp, `clush --copy` / `--rcopy`).
 *
 * To hosts: SRC... are staged into a temporary directory (files/NAME), packed into a bundle
 * "cp-<user>-<ms>"@1.0.0, signed with --sign-key (or $MUSTER_SIGNING_KEY; unsigned only where
 * musterd allows unsigned bundles), pushed, and copied into DEST on every target by a one-task
 * job running from the verified, unpacked bundle. The bundle is removed from the control plane
 * when the job ends; agents keep it in their cache like any bundle.
 *
 * From hosts (--from-hosts): REMOTE... (absolute paths) are archived on each host by `tar` as
 * the task's stdout; after the job, each host's byte-exact stdout (Admin/TaskLogs) is written
 * to a temporary file and extracted into LOCAL/<host>/ (cp_extract.h's rules). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/temp_bundle.h"
#include "cli/cp_extract.h"
#include "cli/nodeset.h"
#include "cli/watch.h"
#include "lib/base/clock.h"
#include "lib/bundle/keys.h"
#include "lib/bundle/pack.h"
#include "lib/bundle/verify.h"

#define MU_CP_MAX_DEPTH 64
#define MU_CP_MAX_BUNDLE (4ull << 30)

static const char cp_usage[] =
    "usage: muster cp [-t SELECTOR | --all | --hosts H1,H2] [--sign-key KEY]\n"
    "                 [--max-concurrency N|P%] [--timeout DUR] SRC... DEST\n"
    "       muster cp --from-hosts [-t SELECTOR | --all | --hosts H1,H2] [--max-size SIZE]\n"
    "                 [--timeout DUR] REMOTE... LOCAL_DIR\n"
    "\n"
    "Copies local files and directories into the directory DEST on every target (created if\n"
    "missing; each SRC keeps its name), through a bundle signed with --sign-key (default\n"
    "$MUSTER_SIGNING_KEY) that every agent verifies before anything is written.\n"
    "--from-hosts collects absolute REMOTE paths from every target into LOCAL_DIR/<host>/.\n";

/* The job that copies the unpacked bundle's files/ into DEST ($1). */
static const char copy_script[] =
    "set -e\n"
    "mkdir -p -- \"$1\"\n"
    "cp -R -p -- files/. \"$1\"/\n";

typedef struct cp_args {
  Muster__V1__Target target;
  Muster__V1__Rollout rollout;
  char **hosts; /* --hosts expanded (owned) */
  size_t n_hosts;
  const char *sign_key;
  const char *timeout;
  const char *max_size;
  int from_hosts;
  char **paths; /* SRC... DEST, or REMOTE... LOCAL_DIR */
  int n_paths;
} cp_args;

static int usage(const char *fmt, const char *arg) {
  fprintf(stderr, "muster cp: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", cp_usage);
  return 2;
}

static int parse_args(int argc, char **argv, cp_args *a) {
  static const struct option lo[] = {{"all", no_argument, NULL, 'a'},
                                     {"hosts", required_argument, NULL, 'H'},
                                     {"sign-key", required_argument, NULL, 'k'},
                                     {"from-hosts", no_argument, NULL, 'F'},
                                     {"max-size", required_argument, NULL, 'S'},
                                     {"timeout", required_argument, NULL, 'T'},
                                     {"max-concurrency", required_argument, NULL, 'c'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  int c, targets = 0;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "t:h", lo, NULL)) != -1) {
    switch (c) {
      case 't':
        a->target.selector = optarg;
        targets++;
        break;
      case 'a':
        a->target.all = 1;
        targets++;
        break;
      case 'H': {
        mu_err err = {0};
        mu_nodeset_names_free(a->hosts, a->n_hosts);
        a->hosts = NULL;
        a->n_hosts = 0;
        if (mu_nodeset_expand(optarg, MU_NODESET_MAX_HOSTS, &a->hosts, &a->n_hosts, &err) != 0)
          return usage("--hosts: %s", err.msg);
        a->target.hosts = a->hosts;
        a->target.n_hosts = a->n_hosts;
        targets++;
        break;
      }
      case 'k': a->sign_key = optarg; break;
      case 'F': a->from_hosts = 1; break;
      case 'S': a->max_size = optarg; break;
      case 'T': a->timeout = optarg; break;
      case 'c': a->rollout.max_concurrency = optarg; break;
      case 'h': fputs(cp_usage, stdout); return 0;
      default: return usage("unknown or incomplete option '%s'", argv[optind - 1]);
    }
  }
  if (targets > 1) return usage("%s", "give only one of -t, --all, --hosts");
  if (targets == 0) a->target.all = 1;
  a->paths = argv + optind;
  a->n_paths = argc - optind;
  if (a->n_paths < 2) return usage("%s", "expected at least one source and a destination");
  if (a->from_hosts && a->sign_key != NULL) return usage("%s", "--sign-key is for copies to hosts");
  if (!a->from_hosts && a->max_size != NULL) return usage("%s", "--max-size is for --from-hosts");
  return -1; /* go on */
}

/* ---- to hosts ---- */

/* Copies src into dst (which must not exist): files with their permission bits (set-id and
 * sticky bits dropped), directories recursively, symlinks as they are; anything else refused. */
static int stage_copy(const char *src, const char *dst, int depth, mu_err *err) {
  struct stat st;
  if (depth > MU_CP_MAX_DEPTH) return mu_err_set(err, MU_EINVAL, "%s: nested too deep", src);
  if (lstat(src, &st) != 0) return mu_err_set(err, MU_ENOENT, "%s: %s", src, strerror(errno));
  if (S_ISLNK(st.st_mode)) {
    char target[PATH_MAX];
    ssize_t n = readlink(src, target, sizeof target - 1);
    if (n < 0) return mu_err_set(err, MU_EIO, "%s: %s", src, strerror(errno));
    target[n] = '\0';
    if (symlink(target, dst) != 0) return mu_err_set(err, MU_EIO, "%s: %s", dst, strerror(errno));
    return 0;
  }
  if (S_ISDIR(st.st_mode)) {
    if (mkdir(dst, (st.st_mode & 0777) | 0700) != 0) return mu_err_set(err, MU_EIO, "%s: %s", dst, strerror(errno));
    DIR *d = opendir(src);
    if (d == NULL) return mu_err_set(err, MU_EIO, "%s: %s", src, strerror(errno));
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char s[PATH_MAX], t[PATH_MAX];
      if ((size_t)snprintf(s, sizeof s, "%s/%s", src, de->d_name) >= sizeof s ||
          (size_t)snprintf(t, sizeof t, "%s/%s", dst, de->d_name) >= sizeof t)
        rc = mu_err_set(err, MU_EINVAL, "%s/%s: path too long", src, de->d_name);
      else rc = stage_copy(s, t, depth + 1, err);
    }
    closedir(d);
    return rc;
  }
  if (!S_ISREG(st.st_mode))
    return mu_err_set(err, MU_EINVAL, "%s: only files, directories and symlinks are copied", src);
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return mu_err_set(err, MU_EIO, "%s: %s", src, strerror(errno));
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
  int rc = 0;
  if (out < 0) {
    rc = mu_err_set(err, MU_EIO, "%s: %s", dst, strerror(errno));
  } else {
    char buf[65536];
    ssize_t n;
    while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || write(out, buf, (size_t)n) != n)
        rc = mu_err_set(err, MU_EIO, "copying %s: %s", src, strerror(errno));
    }
    if (close(out) != 0 && rc == 0) rc = mu_err_set(err, MU_EIO, "%s: %s", dst, strerror(errno));
  }
  close(in);
  return rc;
}

/* rm -r of a staging directory we made (no symlink is followed). */
static void remove_tree(const char *path, int depth) {
  struct stat st;
  if (depth > MU_CP_MAX_DEPTH + 2 || lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      char p[PATH_MAX];
      if ((size_t)snprintf(p, sizeof p, "%s/%s", path, de->d_name) < sizeof p) remove_tree(p, depth + 1);
    }
    if (d != NULL) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

static const char *base_name(const char *path, char *buf, size_t size) {
  snprintf(buf, size, "%s", path);
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
  const char *slash = strrchr(buf, '/');
  return slash ? slash + 1 : buf;
}

/* Packs the sources into work/bundle.tar.zst as name@1.0.0; *ret_sig is the .sig text or NULL. */
static int pack_sources(const cp_args *a, const char *work, const char *name, uint8_t **ret_data, size_t *ret_len,
                        char **ret_sig, mu_err *err) {
  char stage[PATH_MAX], files[PATH_MAX], out[PATH_MAX], digest[MU_BUNDLE_DIGEST_SIZE];
  snprintf(stage, sizeof stage, "%s/stage", work);
  snprintf(files, sizeof files, "%s/files", stage);
  snprintf(out, sizeof out, "%s/bundle.tar.zst", work);
  if (mkdir(stage, 0700) != 0 || mkdir(files, 0755) != 0)
    return mu_err_set(err, MU_EIO, "%s: %s", stage, strerror(errno));
  for (int i = 0; i < a->n_paths - 1; i++) {
    char b[PATH_MAX], dst[PATH_MAX];
    const char *base = base_name(a->paths[i], b, sizeof b);
    if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
      return mu_err_set(err, MU_EINVAL, "%s: name a file or directory to copy", a->paths[i]);
    snprintf(dst, sizeof dst, "%s/%s", files, base);
    if (access(dst, F_OK) == 0)
      return mu_err_set(err, MU_EINVAL, "%s: another source is also called '%s'", a->paths[i], base);
    int rc = stage_copy(a->paths[i], dst, 0, err);
    if (rc != 0) return rc;
  }
  mu_pack_opts po = {.name = name, .version = "1.0.0", .created_at = mu_now_ms() / 1000};
  int rc = mu_bundle_pack(stage, &po, out, digest, err);
  if (rc == 0) rc = mu_bundle_read_file(out, MU_CP_MAX_BUNDLE, ret_data, ret_len, err);
  if (rc != 0 || a->sign_key == NULL) return rc;
  mu_seckey sk;
  rc = mu_seckey_load_file(a->sign_key, &sk, err);
  if (rc != 0) return rc;
  rc = mu_bundle_sign(*ret_data, *ret_len, &sk, NULL, ret_sig, err);
  mu_seckey_wipe(&sk);
  return rc;
}

/* Submits the one-task job; returns the exit code of watching it (2 for a refusal). */
static int run_job(const mu_cli_opts *opts, cp_args *a, char **command, size_t n_command, const char *bundle, int quiet,
                   char *job_id, size_t job_id_size) {
  Muster__V1__RunAdhocRequest req = MUSTER__V1__RUN_ADHOC_REQUEST__INIT;
  Muster__V1__Resources res = MUSTER__V1__RESOURCES__INIT;
  req.target = &a->target;
  req.rollout = &a->rollout;
  req.command = command;
  req.n_command = n_command;
  if (a->timeout != NULL) req.timeout = (char *)a->timeout;
  if (bundle != NULL) req.bundle = (char *)bundle;
  if (a->from_hosts) {
    res.output_limit = (char *)(a->max_size ? a->max_size : "256M");
    req.resources = &res;
  }
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/RunAdhoc", &req.base, &muster__v1__submit_job_response__descriptor, &reply,
                   &err) != 0) {
    fprintf(stderr, "muster cp: %s\n", err.msg);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  Muster__V1__SubmitJobResponse *r = (Muster__V1__SubmitJobResponse *)reply;
  snprintf(job_id, job_id_size, "%s", r->job_id);
  uint32_t targets = r->targets;
  protobuf_c_message_free_unpacked(reply, NULL);
  if (!opts->json && !quiet) fprintf(stderr, "job %s: %u %s\n", job_id, targets, targets == 1 ? "target" : "targets");
  mu_watch_opts w = {.quiet = quiet};
  return mu_watch_job(opts, &w, job_id, targets, 1);
}

static int copy_to_hosts(const mu_cli_opts *opts, cp_args *a) {
  char work[] = "/tmp/muster-cp-XXXXXX";
  if (mkdtemp(work) == NULL) {
    fprintf(stderr, "muster cp: a temporary directory: %s\n", strerror(errno));
    return 1;
  }
  char name[96], ref[128];
  mu_cli_temp_bundle_name("cp", name, sizeof name, ref, sizeof ref);
  uint8_t *data = NULL;
  size_t len = 0;
  char *sig = NULL;
  mu_err err = {0};
  int status = 2;
  Muster__V1__BundleInfo *bi = NULL;
  if (pack_sources(a, work, name, &data, &len, &sig, &err) != 0) {
    fprintf(stderr, "muster cp: %s\n", err.msg);
    goto out;
  }
  if (mu_cli_bundle_upload(opts, data, len, (const uint8_t *)sig, sig ? strlen(sig) : 0, ref, !opts->json, &bi, &status,
                           &err) != 0) {
    fprintf(stderr, "muster cp: %s%s\n", err.msg,
            sig == NULL ? " (unsigned: pass --sign-key or set MUSTER_SIGNING_KEY)" : "");
    goto out;
  }
  protobuf_c_message_free_unpacked(&bi->base, NULL);
  char *command[] = {"sh", "-c", (char *)copy_script, "muster-cp", a->paths[a->n_paths - 1]};
  char job_id[128];
  status = run_job(opts, a, command, 5, ref, opts->quiet, job_id, sizeof job_id);
  mu_cli_temp_bundle_delete(opts, "muster cp", ref);
out:
  free(data);
  free(sig);
  remove_tree(work, 0);
  return status;
}

/* ---- from hosts ---- */

typedef struct collect {
  FILE *out; /* the host's stdout, to a temporary file */
  const char *host;
  size_t gaps;
  int truncated; /* a gap because the archive went past the task's output limit */
  int write_failed;
} collect;

static int on_chunk(void *ud, const uint8_t *data, size_t len) {
  collect *c = ud;
  Muster__V1__LogChunk *ch = muster__v1__log_chunk__unpack(NULL, len, data);
  if (ch == NULL) return -1;
  if (ch->note[0] != '\0') fprintf(stderr, "%s: note: %s\n", c->host, ch->note);
  if (ch->gap != NULL) {
    c->gaps++;
    c->truncated |= ch->gap->reason == MUSTER__V1__LOG_GAP__REASON__TRUNCATED;
  }
  const Muster__V1__OutputChunk *o = ch->output;
  if (o != NULL && o->stream == MUSTER__V1__OUTPUT_CHUNK__STREAM__STDOUT && o->data.len > 0 &&
      fwrite(o->data.data, 1, o->data.len, c->out) != o->data.len)
    c->write_failed = 1;
  else if (o != NULL && o->stream == MUSTER__V1__OUTPUT_CHUNK__STREAM__STDERR && o->data.len > 0)
    fprintf(stderr, "%s: %.*s", c->host, (int)o->data.len, (const char *)o->data.data);
  protobuf_c_message_free_unpacked(&ch->base, NULL);
  return c->write_failed ? -1 : 0;
}

/* One host's archive: TaskLogs stdout into a temporary file, then extracted. 0 or 1. */
static int collect_host(const mu_cli_opts *opts, const Muster__V1__TaskRun *tr, const char *local, const char *work) {
  char tmp[PATH_MAX], dest[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/%s.tar", work, tr->agent_id);
  snprintf(dest, sizeof dest, "%s/%s", local, tr->agent_id);
  collect c = {.host = tr->agent_id, .out = fopen(tmp, "wbx")};
  if (c.out == NULL) {
    fprintf(stderr, "muster cp: %s: %s\n", tmp, strerror(errno));
    return 1;
  }
  Muster__V1__TaskLogsRequest req = MUSTER__V1__TASK_LOGS_REQUEST__INIT;
  req.job_id = tr->job_id;
  req.task_id = tr->task_id;
  mu_err err = {0};
  int rc = mu_cli_stream(opts, "/muster.v1.Admin/TaskLogs", &req.base, on_chunk, NULL, &c, &err);
  if (fclose(c.out) != 0) c.write_failed = 1;
  if (rc != 0 || c.write_failed || c.gaps > 0) {
    fprintf(stderr, "muster cp: %s: %s\n", tr->agent_id,
            rc != 0          ? err.msg
            : c.write_failed ? "writing the archive failed"
            : c.truncated    ? "the archive is larger than --max-size; nothing extracted"
                             : "part of the archive is missing (the agent's output spool lost "
                               "it); nothing extracted");
    unlink(tmp);
    return 1;
  }
  size_t entries = 0;
  rc = mu_cp_extract_file(tmp, dest, NULL, &entries, &err);
  unlink(tmp);
  if (rc != 0) {
    fprintf(stderr, "muster cp: %s: %s\n", tr->agent_id, err.msg);
    return 1;
  }
  if (!opts->json) printf("%s: %zu %s into %s\n", tr->agent_id, entries, entries == 1 ? "entry" : "entries", dest);
  return 0;
}

static int copy_from_hosts(const mu_cli_opts *opts, cp_args *a) {
  const char *local = a->paths[a->n_paths - 1];
  size_t n = (size_t)a->n_paths - 1;
  char **command = calloc(n + 6, sizeof *command);
  if (command == NULL) return 1;
  command[0] = "tar";
  command[1] = "-C";
  command[2] = "/";
  command[3] = "-cf";
  command[4] = "-";
  command[5] = "--";
  for (size_t i = 0; i < n; i++) {
    const char *p = a->paths[i];
    int dotdot = strstr(p, "/../") != NULL || (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0);
    if (p[0] != '/' || p[1] == '\0' || dotdot) {
      free(command);
      return usage("'%s': remote paths must be absolute, not '/', and without '..'", p);
    }
    command[6 + i] = (char *)p + 1;
  }
  if (mkdir(local, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "muster cp: %s: %s\n", local, strerror(errno));
    free(command);
    return 1;
  }
  char work[] = "/tmp/muster-cp-XXXXXX";
  if (mkdtemp(work) == NULL) {
    fprintf(stderr, "muster cp: a temporary directory: %s\n", strerror(errno));
    free(command);
    return 1;
  }
  char job_id[128];
  int status = run_job(opts, a, command, n + 6, NULL, 1, job_id, sizeof job_id);
  free(command);
  if (status == 2) goto out;
  Muster__V1__GetJobRequest greq = MUSTER__V1__GET_JOB_REQUEST__INIT;
  greq.job_id = job_id;
  greq.include_tasks = 1;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/GetJob", &greq.base, &muster__v1__job__descriptor, &reply, &err) != 0) {
    fprintf(stderr, "muster cp: %s\n", err.msg);
    status = 1;
    goto out;
  }
  Muster__V1__Job *job = (Muster__V1__Job *)reply;
  for (size_t i = 0; i < job->n_tasks; i++) {
    const Muster__V1__TaskRun *tr = job->tasks[i];
    if (tr->retry_pending || tr->agent_id[0] == '\0') continue;
    if (tr->state != MUSTER__V1__TASK_STATE__SUCCEEDED) {
      fprintf(stderr, "muster cp: %s: nothing collected (%s)\n", tr->agent_id,
              tr->message[0] ? tr->message : "the task failed");
      status = 1;
      continue;
    }
    if (collect_host(opts, tr, local, work) != 0) status = 1;
  }
  protobuf_c_message_free_unpacked(reply, NULL);
out:
  remove_tree(work, 0);
  return status;
}

int mu_cmd_cp(const mu_cli_opts *opts, int argc, char **argv) {
  cp_args a;
  memset(&a, 0, sizeof a);
  muster__v1__target__init(&a.target);
  muster__v1__rollout__init(&a.rollout);
  int rc = parse_args(argc, argv, &a);
  if (rc < 0) {
    if (a.sign_key == NULL && !a.from_hosts) a.sign_key = getenv("MUSTER_SIGNING_KEY");
    if (a.sign_key != NULL && a.sign_key[0] == '\0') a.sign_key = NULL;
    rc = a.from_hosts ? copy_from_hosts(opts, &a) : copy_to_hosts(opts, &a);
  }
  mu_nodeset_names_free(a.hosts, a.n_hosts);
  return rc;
}
