/* `muster image scan` of an image with many packages against a large OSV feed (issue 19:
 * 1,000 packages against 100,000 records, target < 1 s), through the real binary: the
 * image is an OCI layout written here (one layer: os-release, a dpkg status of --packages
 * packages, --python dist-infos, --files filler files), the feed --records OSV files spread
 * over 20,000 Debian source names and PyPI/Alpine ones, imported with `muster image feed
 * update`. Prints the import time, then scan wall times: cold (empty store, no cached
 * result), no-cache (store warm: the inventory and match redone) and cached. Figures only.
 *
 *   bazel run -c opt //bench:scan_bench -- [--packages N] [--records N] [--files N] [--runs N]
 *                                          [--keep 1]   (leave the data for profiling) */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "scan_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void add_file(struct archive *a, const char *name, const char *data, size_t len) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)len);
  archive_entry_set_mtime(e, 1700000000, 0);
  if (archive_write_header(a, e) != ARCHIVE_OK) die("archive_write_header");
  if (len) archive_write_data(a, data, len);
  archive_entry_free(e);
}

static void sha256_file(const char *path, char hex[65], long *ret_size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) die(path);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  char buf[65536];
  size_t n;
  long total = 0;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    EVP_DigestUpdate(md, buf, n);
    total += (long)n;
  }
  fclose(f);
  unsigned char h[32];
  unsigned hl;
  EVP_DigestFinal_ex(md, h, &hl);
  EVP_MD_CTX_free(md);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
  *ret_size = total;
}

/* blobs/sha256/<hex> of the file at tmp (renamed into place); hex out. */
static long to_blob(const char *layout, const char *tmp, char hex[65]) {
  long size;
  sha256_file(tmp, hex, &size);
  char dest[4096];
  snprintf(dest, sizeof dest, "%s/blobs/sha256/%s", layout, hex);
  if (rename(tmp, dest) != 0) die("rename");
  return size;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0) die(path);
}

static void make_image(const char *layout, int packages, int python, int files) {
  char p[4096], layer_hex[65], cfg_hex[65], man_hex[65], diff_hex[65];
  snprintf(p, sizeof p, "mkdir -p %s/blobs/sha256", layout);
  if (system(p) != 0) die("mkdir");
  snprintf(p, sizeof p, "%s/layer.tmp", layout);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (archive_write_open_filename(a, p) != ARCHIVE_OK) die("layer");
  const char *osr = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
  add_file(a, "etc/os-release", osr, strlen(osr));
  size_t cap = (size_t)packages * 200 + 1, len = 0;
  char *status = malloc(cap);
  for (int i = 0; i < packages; i++)
    len += (size_t)snprintf(status + len, cap - len,
                            "Package: lib%05d\nStatus: install ok installed\nVersion: 1.2.%d-1\nSource: src%05d\n"
                            "Architecture: amd64\n\n",
                            i, i % 50, i);
  add_file(a, "var/lib/dpkg/status", status, len);
  free(status);
  for (int i = 0; i < python; i++) {
    char name[200], meta[200];
    snprintf(name, sizeof name, "usr/lib/python3/dist-packages/py%04d-2.%d.dist-info/METADATA", i, i % 10);
    int ml = snprintf(meta, sizeof meta, "Metadata-Version: 2.1\nName: py%04d\nVersion: 2.%d\n\n", i, i % 10);
    add_file(a, name, meta, (size_t)ml);
  }
  char filler[256];
  memset(filler, 'x', sizeof filler);
  for (int i = 0; i < files; i++) {
    char name[200];
    snprintf(name, sizeof name, "usr/share/doc/lib%05d/copyright-%d", i % (packages ? packages : 1), i);
    add_file(a, name, filler, sizeof filler);
  }
  archive_write_close(a);
  archive_write_free(a);
  long layer_size = to_blob(layout, p, layer_hex);
  memcpy(diff_hex, layer_hex, sizeof diff_hex);
  char doc[2048];
  snprintf(doc, sizeof doc,
           "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"app\"},"
           "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}",
           diff_hex);
  snprintf(p, sizeof p, "%s/cfg.tmp", layout);
  write_text(p, doc);
  long cfg_size = to_blob(layout, p, cfg_hex);
  snprintf(doc, sizeof doc,
           "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
           "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\","
           "\"size\":%ld},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
           "\"digest\":\"sha256:%s\",\"size\":%ld}]}",
           cfg_hex, cfg_size, layer_hex, layer_size);
  snprintf(p, sizeof p, "%s/man.tmp", layout);
  write_text(p, doc);
  long man_size = to_blob(layout, p, man_hex);
  snprintf(doc, sizeof doc,
           "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
           "\"digest\":\"sha256:%s\",\"size\":%ld}]}",
           man_hex, man_size);
  snprintf(p, sizeof p, "%s/index.json", layout);
  write_text(p, doc);
  snprintf(p, sizeof p, "%s/oci-layout", layout);
  write_text(p, "{\"imageLayoutVersion\":\"1.0.0\"}");
  printf("image: %d dpkg packages, %d python, %d filler files; layer %.1f MiB\n", packages, python, files,
         (double)layer_size / (1 << 20));
}

/* Records spread over 20,000 Debian source names (records/5 for smaller feeds; the image's
 * are src00000..), 3,000 PyPI
 * names and 1,000 Alpine ones; each fixed at a version that half the image's versions are
 * below. */
static void make_feed(const char *dir, int records) {
  char p[4096];
  int names = records / 5 < 20000 ? (records / 5 > 0 ? records / 5 : 1) : 20000; /* 20,000 at 100,000 */
  for (int i = 0; i < records; i++) {
    if (i % 1000 == 0) {
      snprintf(p, sizeof p, "%s/%03d", dir, i / 1000);
      if (mkdir(p, 0755) != 0 && errno != EEXIST) die(p);
    }
    char rec[1024], eco[32], name[32], fix[32];
    int k = i % 10;
    if (k < 7) {
      snprintf(eco, sizeof eco, "Debian:12");
      snprintf(name, sizeof name, "src%05d", (i * 7) % names);
      snprintf(fix, sizeof fix, "1.2.%d-1", (i / 10) % 50);
    } else if (k < 9) {
      snprintf(eco, sizeof eco, "PyPI");
      snprintf(name, sizeof name, "py%04d", i % 3000);
      snprintf(fix, sizeof fix, "2.%d", (i / 10) % 10);
    } else {
      snprintf(eco, sizeof eco, "Alpine:v3.19");
      snprintf(name, sizeof name, "apk%04d", i % 1000);
      snprintf(fix, sizeof fix, "1.%d-r1", i % 7);
    }
    static const char *const sev[] = {"CRITICAL", "HIGH", "MEDIUM", "LOW"};
    int n = snprintf(rec, sizeof rec,
                     "{\"id\":\"BENCH-%06d\",\"modified\":\"2024-05-01T00:00:00Z\",\"published\":"
                     "\"2024-04-01T00:00:00Z\",\"aliases\":[\"CVE-2024-%06d\"],\"summary\":\"generated record %d for "
                     "the scan benchmark\",\"database_specific\":{\"severity\":\"%s\"},\"affected\":[{\"package\":"
                     "{\"ecosystem\":\"%s\",\"name\":\"%s\"},\"ranges\":[{\"type\":\"ECOSYSTEM\",\"events\":"
                     "[{\"introduced\":\"0\"},{\"fixed\":\"%s\"}]}]}]}",
                     i, i, i, sev[i % 4], eco, name, fix);
    snprintf(p, sizeof p, "%s/%03d/BENCH-%06d.json", dir, i / 1000, i);
    FILE *f = fopen(p, "w");
    if (f == NULL || fwrite(rec, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0) die(p);
  }
}

/* Runs argv with stdout to out_path (or /dev/null); returns wall ms, -1 on failure. */
static double run(char *const argv[], const char *out_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  double t0 = now_ms();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0) die("spawn");
  int st;
  waitpid(pid, &st, 0);
  double ms = now_ms() - t0;
  posix_spawn_file_actions_destroy(&fa);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "scan_bench: %s %s %s exited %d\n", argv[0], argv[1], argv[2], WEXITSTATUS(st));
    return -1;
  }
  return ms;
}

static int dcmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, dcmp);
  printf("%-44s median %7.1f ms   min %7.1f   max %7.1f   (%d runs)\n", what, v[n / 2], v[0], v[n - 1], n);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: scan_bench MUSTER [--packages N] [--records N] [--files N] [--python N] [--runs N]\n");
    return 2;
  }
  char muster[4096];
  if (realpath(argv[1], muster) == NULL) die(argv[1]);
  int packages = 1000, records = 100000, files = 20000, python = 50, runs = 5, keep = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    int v = atoi(argv[i + 1]);
    if (strcmp(argv[i], "--packages") == 0) packages = v;
    else if (strcmp(argv[i], "--records") == 0) records = v;
    else if (strcmp(argv[i], "--files") == 0) files = v;
    else if (strcmp(argv[i], "--python") == 0) python = v;
    else if (strcmp(argv[i], "--runs") == 0) runs = v > 0 ? v : 1;
    else if (strcmp(argv[i], "--keep") == 0) keep = v;
  }
  char tmp[] = "/tmp/scan_bench.XXXXXX";
  if (mkdtemp(tmp) == NULL) die("mkdtemp");
  char layout[4096], osv[4096], feed[4096], store[4096], cache[4096], out[4096];
  snprintf(layout, sizeof layout, "%s/image", tmp);
  snprintf(osv, sizeof osv, "%s/osv", tmp);
  snprintf(feed, sizeof feed, "%s/feed", tmp);
  snprintf(store, sizeof store, "%s/store", tmp);
  snprintf(cache, sizeof cache, "%s/cache", tmp);
  snprintf(out, sizeof out, "%s/out.json", tmp);
  setenv("HOME", tmp, 1);
  setenv("MUSTER_CONFIG", "/nonexistent", 1);
  make_image(layout, packages, python, files);
  if (mkdir(osv, 0755) != 0) die(osv);
  double t0 = now_ms();
  make_feed(osv, records);
  printf("feed: %d OSV records written in %.0f ms\n", records, now_ms() - t0);
  char *upd[] = {muster, "image", "feed", "update", osv, "--feed-dir", feed, NULL};
  double imp = run(upd, NULL);
  if (imp < 0) return 1;
  printf("%-44s %7.0f ms\n", "feed update (import + index of all records)", imp);
  char *scan_nc[] = {muster, "image",       "scan", layout, "--feed", feed,         "--store",
                     store,  "--cache-dir", cache,  "-o",   "json",   "--no-cache", NULL};
  char *scan_c[] = {muster, "image",       "scan", layout, "--feed", feed, "--store",
                    store,  "--cache-dir", cache,  "-o",   "json",   NULL};
  double *v = calloc((size_t)runs, sizeof *v);
  for (int i = 0; i < runs; i++) {
    char rm[4200];
    snprintf(rm, sizeof rm, "rm -rf %s", store);
    if (system(rm) != 0) die("rm");
    v[i] = run(scan_nc, out);
    if (v[i] < 0) return 1;
  }
  report("scan, cold (empty store, no cached result)", v, runs);
  for (int i = 0; i < runs; i++) v[i] = run(scan_nc, out);
  report("scan, --no-cache (store warm)", v, runs);
  FILE *f = fopen(out, "r");
  char line[4096] = "";
  if (f != NULL && fgets(line, sizeof line, f) != NULL) {
    char *fc = strstr(line, "\"findingCount\":");
    char *tot = strstr(line, "\"total\":");
    printf("%-44s %s findings, %s packages\n", "result", fc ? strtok(fc + 15, ",}") : "?",
           tot ? strtok(tot + 8, ",}") : "?");
  }
  if (f) fclose(f);
  if (run(scan_c, out) < 0) return 1; /* fills the cache */
  for (int i = 0; i < runs; i++) v[i] = run(scan_c, out);
  report("scan, cached result", v, runs);
  char *ver[] = {muster, "--version", NULL};
  for (int i = 0; i < runs; i++) v[i] = run(ver, NULL);
  report("muster --version (process floor)", v, runs);
  free(v);
  if (keep) {
    printf("kept %s (image/, feed/, store/, cache/)\n", tmp);
    return 0;
  }
  char rm[4200];
  snprintf(rm, sizeof rm, "rm -rf %s", tmp);
  if (system(rm) != 0) return 1;
  return 0;
}
