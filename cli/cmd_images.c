/* `muster images`: what each agent's container image store holds (admin ListImages). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/output_json.h"
#include "lib/base/clock.h"
#include "lib/jobcounts/jobcounts.h"
#include "muster/v1/admin.pb-c.h"

static const char images_usage[] =
    "usage: muster images [-t SELECTOR] [-o json]\n"
    "       muster images prune [-t SELECTOR] [--max-bytes SIZE] [--max-age DUR] [-o json]\n"
    "\n"
    "Lists the container images each connected agent's image store holds (the agents -t\n"
    "selects, default all): host, manifest digest, the tags that resolve to it there, size\n"
    "(blobs and unpacked rootfs), whether a running container uses it, and its last use. An\n"
    "agent without the container task type, or that did not answer in 20 s, is listed with\n"
    "the reason. -o json: one object per agent.\n"
    "prune runs each store's GC first (operator role): images unused for --max-age, then the\n"
    "least recently used until the store is at most --max-bytes; never one in use. It prints\n"
    "what each agent removed, then the images left.\n";

static void human(uint64_t n, char *buf, size_t size) {
  if (n >= (1ull << 30)) snprintf(buf, size, "%.1f GiB", (double)n / (1 << 30));
  else if (n >= (1u << 20)) snprintf(buf, size, "%.1f MiB", (double)n / (1 << 20));
  else snprintf(buf, size, "%.1f KiB", (double)n / 1024);
}

int mu_cmd_images(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"selector", required_argument, NULL, 't'},
                                     {"max-bytes", required_argument, NULL, 'b'},
                                     {"max-age", required_argument, NULL, 'a'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  Muster__V1__ListImagesRequest req = MUSTER__V1__LIST_IMAGES_REQUEST__INIT;
  Muster__V1__PruneImagesRequest preq = MUSTER__V1__PRUNE_IMAGES_REQUEST__INIT;
  bool prune = argc > 1 && strcmp(argv[1], "prune") == 0;
  if (prune) {
    argc--;
    argv++;
  }
  int c;
  optind = 1;
  opterr = 0;
  mu_err serr = {0};
  while ((c = getopt_long(argc, argv, "t:h", lo, NULL)) != -1) {
    switch (c) {
      case 't': req.selector = preq.selector = optarg; break;
      case 'b':
        if (!prune || mu_size_parse(optarg, &preq.max_bytes, &serr) != 0) {
          fprintf(stderr, "muster images: --max-bytes: %s\n", prune ? serr.msg : "only with prune");
          return 2;
        }
        break;
      case 'a':
        if (!prune) {
          fprintf(stderr, "muster images: --max-age: only with prune\n");
          return 2;
        }
        preq.max_age = optarg;
        break;
      case 'h': fputs(images_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster images: unknown or incomplete option '%s'\n%s", argv[optind - 1], images_usage);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "muster images: unexpected argument '%s'\n%s", argv[optind], images_usage);
    return 2;
  }
  ProtobufCMessage *reply_msg = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, prune ? "/muster.v1.Admin/PruneImages" : "/muster.v1.Admin/ListImages",
                   prune ? &preq.base : &req.base, &muster__v1__list_images_response__descriptor, &reply_msg,
                   &err) != 0) {
    fprintf(stderr, "muster images: %s\n", err.msg);
    return err.code == MU_EINVAL ? 2 : 1;
  }
  Muster__V1__ListImagesResponse *reply = (Muster__V1__ListImagesResponse *)reply_msg;
  int rc = 0;
  if (opts->json) {
    for (size_t i = 0; i < reply->n_agents && rc == 0; i++) rc = mu_cli_json_message("images", &reply->agents[i]->base);
  } else {
    size_t images = 0, failed = 0;
    for (size_t i = 0; prune && i < reply->n_agents; i++) {
      const Muster__V1__AgentImages *a = reply->agents[i];
      char before[32], after[32];
      human(a->bytes_before, before, sizeof before);
      human(a->bytes_after, after, sizeof after);
      if (a->error[0] == '\0')
        printf("%s: removed %u image%s, %s -> %s\n", a->agent_id, a->removed, a->removed == 1 ? "" : "s", before,
               after);
    }
    printf("%-20s %-19s %-36s %10s %-6s %s\n", "HOST", "DIGEST", "REFS", "SIZE", "IN USE", "LAST USED");
    for (size_t i = 0; i < reply->n_agents; i++) {
      const Muster__V1__AgentImages *a = reply->agents[i];
      if (a->error[0] != '\0') {
        printf("%-20s error: %s\n", a->agent_id, a->error);
        failed++;
        continue;
      }
      for (size_t j = 0; j < a->n_images; j++) {
        const Muster__V1__StoredImage *im = a->images[j];
        char refs[512] = "", size[32], ago[32];
        size_t off = 0;
        for (size_t k = 0; k < im->n_refs && off < sizeof refs; k++)
          off += (size_t)snprintf(refs + off, sizeof refs - off, "%s%s", k ? "," : "", im->refs[k]);
        human(im->bytes, size, sizeof size);
        printf("%-20s %-19.19s %-36s %10s %-6s %s\n", a->agent_id, im->digest, refs[0] ? refs : "-", size,
               im->in_use ? "yes" : "no", mu_cli_ago(im->last_used_ms, ago, sizeof ago));
        images++;
      }
    }
    char ni[48], na[48];
    printf("%s on %s", mu_plural(images, "image", ni, sizeof ni), mu_plural(reply->n_agents, "agent", na, sizeof na));
    if (failed > 0) printf(", %zu without an answer", failed);
    printf("\n");
    if (failed > 0) rc = 1;
  }
  protobuf_c_message_free_unpacked(reply_msg, NULL);
  return rc;
}
