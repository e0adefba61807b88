/* `muster secret set|ls|rm|rotate-key|keygen`: the secret store (docs/security.md#secrets).
 * A value is never an argument (it would sit in the shell history and in ps): set reads it
 * from --file or stdin (without echo on a terminal), and nothing here ever prints one. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/commands.h"
#include "lib/secrets/secret_box.h"
#include "muster/v1/secret.pb-c.h"

static const char secret_usage[] =
    "usage: muster secret set NAME [--file FILE] [--scope SELECTOR] [--keep-newline]\n"
    "       muster secret ls [PREFIX]\n"
    "       muster secret rm NAME\n"
    "       muster secret rotate-key [--new-key FILE]\n"
    "       muster secret keygen --out FILE\n"
    "\n"
    "Secrets are stored encrypted by the control plane and handed only to the agent that runs\n"
    "a task referencing them (secrets: [{name: DB_PASSWORD, from: NAME}] in a job file).\n"
    "set reads the value from FILE or stdin (a prompt without echo on a terminal), drops one\n"
    "trailing newline unless --keep-newline, and prints the name and new version. --scope\n"
    "limits the agents the value is ever sent to (\"env=prod,role=db\"). rotate-key\n"
    "re-encrypts every secret under the key now in musterd's --secret-key file (or --new-key\n"
    "FILE, a path on the leader). keygen writes a new 32-byte key (hex, mode 0600) for\n"
    "musterd --secret-key. See docs/security.md.\n";

/* The value from path ("-" or NULL: stdin), at most MU_SECRET_VALUE_MAX bytes + 1 to notice
 * more. *ret is the caller's (wipe it). */
static int read_value(const char *path, const char *name, char **ret, size_t *ret_len, mu_err *err) {
  int from_stdin = path == NULL || strcmp(path, "-") == 0;
  FILE *f = from_stdin ? stdin : fopen(path, "rb");
  if (f == NULL) return mu_err_set(err, MU_ENOENT, "%s: %s", path, strerror(errno));
  struct termios old, quiet;
  int tty = from_stdin && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    fprintf(stderr, "value for %s (not echoed, end with Enter): ", name);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  char *buf = malloc(MU_SECRET_VALUE_MAX + 2);
  size_t n = 0;
  if (buf != NULL && tty) {
    if (fgets(buf, MU_SECRET_VALUE_MAX + 2, f) != NULL) n = strlen(buf);
  } else if (buf != NULL) {
    n = fread(buf, 1, MU_SECRET_VALUE_MAX + 1, f);
  }
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fputc('\n', stderr);
  }
  if (!from_stdin) fclose(f);
  if (buf == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  buf[n] = '\0';
  *ret = buf;
  *ret_len = n;
  return 0;
}

static void wipe_free(char *p, size_t len) {
  if (p == NULL) return;
  explicit_bzero(p, len);
  free(p);
}

static int fail(const char *what, const mu_err *err) {
  fprintf(stderr, "muster secret %s: %s\n", what, err->msg);
  return err->code == MU_EINVAL ? 2 : 1;
}

/* Calls Secrets/method: 0 with *ret (the caller frees it), or the exit code once the error is
 * printed. */
static int call(const mu_cli_opts *opts, const char *what, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **ret) {
  char path[96];
  mu_err err = {0};
  snprintf(path, sizeof path, "/muster.v1.Secrets/%s", method);
  if (mu_cli_unary(opts, path, req, reply_desc, ret, &err) != 0) return fail(what, &err);
  return 0;
}

static int secret_set(const mu_cli_opts *opts, int argc, char **argv) {
  static const struct option lo[] = {{"file", required_argument, NULL, 'f'},
                                     {"scope", required_argument, NULL, 's'},
                                     {"keep-newline", no_argument, NULL, 'k'},
                                     {"help", no_argument, NULL, 'h'},
                                     {NULL, 0, NULL, 0}};
  Muster__V1__SetSecretRequest req = MUSTER__V1__SET_SECRET_REQUEST__INIT;
  const char *file = NULL;
  int keep_newline = 0, c;
  optind = 1;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "f:s:kh", lo, NULL)) != -1) {
    switch (c) {
      case 'f': file = optarg; break;
      case 's': req.scope = optarg; break;
      case 'k': keep_newline = 1; break;
      case 'h': fputs(secret_usage, stdout); return 0;
      default:
        fprintf(stderr, "muster secret set: unknown or incomplete option '%s'\n%s", argv[optind - 1], secret_usage);
        return 2;
    }
  }
  if (optind + 1 != argc) {
    fprintf(stderr, "muster secret set: %s\n%s",
            optind == argc ? "NAME is required" : "the value is never an argument: give it on stdin or with --file",
            secret_usage);
    return 2;
  }
  req.name = argv[optind];
  mu_err err = {0};
  char *value = NULL;
  size_t len = 0;
  if (mu_secret_check_name(req.name, &err) != 0) return fail("set", &err);
  if (read_value(file, req.name, &value, &len, &err) != 0) return fail("set", &err);
  if (!keep_newline && len > 0 && value[len - 1] == '\n') len--;
  if (!keep_newline && len > 0 && value[len - 1] == '\r') len--;
  int rc = 0;
  if (mu_secret_check_value(value, len, &err) != 0) {
    mu_err_prefix(&err, "secret '%s'", req.name);
    rc = fail("set", &err);
  } else {
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    ProtobufCMessage *reply = NULL;
    rc = call(opts, "set", "SetSecret", &req.base, &muster__v1__set_secret_response__descriptor, &reply);
    if (rc == 0) {
      const Muster__V1__SetSecretResponse *r = (const Muster__V1__SetSecretResponse *)reply;
      if (opts->json) mu_cli_print_json(reply);
      else if (!opts->quiet) printf("secret %s: version %llu\n", r->name, (unsigned long long)r->version);
      protobuf_c_message_free_unpacked(reply, NULL);
    }
  }
  wipe_free(value, MU_SECRET_VALUE_MAX + 2);
  return rc;
}

static int secret_ls(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__ListSecretsRequest req = MUSTER__V1__LIST_SECRETS_REQUEST__INIT;
  if (argc > 2) {
    fprintf(stderr, "muster secret ls: unexpected argument '%s'\n%s", argv[2], secret_usage);
    return 2;
  }
  if (argc == 2) req.name_prefix = argv[1];
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "ls", "ListSecrets", &req.base, &muster__v1__list_secrets_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__ListSecretsResponse *r = (const Muster__V1__ListSecretsResponse *)reply;
  if (opts->json) {
    for (size_t i = 0; i < r->n_secrets; i++) mu_cli_print_json(&r->secrets[i]->base);
  } else if (opts->quiet) { /* names only */
    for (size_t i = 0; i < r->n_secrets; i++) printf("%s\n", r->secrets[i]->name);
  } else {
    printf("%-28s %7s %-24s %-10s %-30s %s\n", "NAME", "VERSION", "SCOPE", "UPDATED", "BY", "KEY");
    for (size_t i = 0; i < r->n_secrets; i++) {
      const Muster__V1__SecretInfo *s = r->secrets[i];
      char ago[32];
      printf("%-28s %7llu %-24s %-10s %-30s %s\n", s->name, (unsigned long long)s->version,
             s->scope[0] ? s->scope : "(any agent)", mu_cli_ago(s->updated_at_ms, ago, sizeof ago), s->updated_by,
             s->key_id);
    }
    printf("%zu secrets; current key id %s\n", r->n_secrets, r->key_id);
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int secret_rm(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "muster secret rm: NAME is required\n%s", secret_usage);
    return 2;
  }
  Muster__V1__DeleteSecretRequest req = MUSTER__V1__DELETE_SECRET_REQUEST__INIT;
  req.name = argv[1];
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "rm", "DeleteSecret", &req.base, &muster__v1__delete_secret_response__descriptor, &reply);
  if (rc != 0) return rc;
  const Muster__V1__DeleteSecretResponse *r = (const Muster__V1__DeleteSecretResponse *)reply;
  if (opts->json) mu_cli_print_json(reply);
  else if (!opts->quiet) printf("deleted secret %s (version %llu)\n", r->name, (unsigned long long)r->version);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int secret_rotate(const mu_cli_opts *opts, int argc, char **argv) {
  Muster__V1__RotateSecretKeyRequest req = MUSTER__V1__ROTATE_SECRET_KEY_REQUEST__INIT;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--new-key") == 0 && i + 1 < argc) {
      req.new_key_file = argv[++i];
    } else {
      fprintf(stderr, "muster secret rotate-key: unexpected argument '%s'\n%s", argv[i], secret_usage);
      return 2;
    }
  }
  ProtobufCMessage *reply = NULL;
  int rc = call(opts, "rotate-key", "RotateSecretKey", &req.base, &muster__v1__rotate_secret_key_response__descriptor,
                &reply);
  if (rc != 0) return rc;
  const Muster__V1__RotateSecretKeyResponse *r = (const Muster__V1__RotateSecretKeyResponse *)reply;
  if (opts->json) mu_cli_print_json(reply);
  else if (!opts->quiet)
    printf("secret key rotated: key id %s -> %s, %u secrets re-encrypted\n", r->old_key_id, r->new_key_id,
           r->reencrypted);
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

static int secret_keygen(int argc, char **argv) {
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      out = argv[++i];
    } else {
      fprintf(stderr, "muster secret keygen: unexpected argument '%s'\n%s", argv[i], secret_usage);
      return 2;
    }
  }
  if (out == NULL) {
    fprintf(stderr, "muster secret keygen: --out FILE is required\n%s", secret_usage);
    return 2;
  }
  mu_secret_key key;
  mu_err err = {0};
  mu_secret_key_generate(&key);
  int rc = mu_secret_key_write(&key, out, &err);
  if (rc == 0) printf("wrote %s (secret key, mode 0600), key id %s\n", out, key.id);
  mu_secret_key_wipe(&key);
  return rc == 0 ? 0 : fail("keygen", &err);
}

int mu_cmd_secret(const mu_cli_opts *opts, int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(secret_usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *sub = argv[1];
  if (strcmp(sub, "set") == 0) return secret_set(opts, argc - 1, argv + 1);
  if (strcmp(sub, "ls") == 0) return secret_ls(opts, argc - 1, argv + 1);
  if (strcmp(sub, "rm") == 0) return secret_rm(opts, argc - 1, argv + 1);
  if (strcmp(sub, "rotate-key") == 0) return secret_rotate(opts, argc - 1, argv + 1);
  if (strcmp(sub, "keygen") == 0) return secret_keygen(argc - 1, argv + 1);
  fprintf(stderr, "muster secret: unknown subcommand '%s'\n%s", sub, secret_usage);
  return 2;
}
