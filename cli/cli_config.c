/* The CLI config file and its contexts (cli_config.h). */
#include "cli/cli_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/config/yaml_doc.h"

int mu_cli_config_path(char *buf, size_t size, mu_err *err) {
  const char *env = getenv("MUSTER_CONFIG");
  if (env != NULL && env[0] != '\0') {
    snprintf(buf, size, "%s", env);
    return 0;
  }
  const char *xdg = getenv("XDG_CONFIG_HOME");
  if (xdg != NULL && xdg[0] == '/') {
    snprintf(buf, size, "%s/muster/config.yaml", xdg);
    return 0;
  }
  const char *home = getenv("HOME");
  if (home == NULL || home[0] == '\0')
    return mu_err_set(err, MU_ENOENT, "no CLI config file: set MUSTER_CONFIG or HOME");
  snprintf(buf, size, "%s/.config/muster/config.yaml", home);
  return 0;
}

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= MU_CLI_CONTEXT_NAME_MAX) return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
          *p == '-' || *p == '@' || *p == ':'))
      return 0;
  return 1;
}

/* A path from the file: "~/x" from HOME, "x" from the file's directory, "/x" as is. */
static char *resolve_path(const char *file, const char *value) {
  char out[PATH_MAX * 2];
  const char *home = getenv("HOME");
  if (strncmp(value, "~/", 2) == 0 && home != NULL) {
    snprintf(out, sizeof out, "%s/%s", home, value + 2);
  } else if (value[0] != '/') {
    const char *slash = strrchr(file, '/');
    if (slash == NULL) snprintf(out, sizeof out, "%s", value);
    else snprintf(out, sizeof out, "%.*s/%s", (int)(slash - file), file, value);
  } else {
    snprintf(out, sizeof out, "%s", value);
  }
  return strdup(out);
}

/* Errors set field->err_line; the walk then prefixes "FILE:LINE: field 'contexts': ". */
static int load_context(const mu_cli_config *cfg, mu_yaml_field *field, mu_yaml_node map, mu_cli_context *ctx,
                        mu_err *err) {
  static const char *const fields[] = {"addr", "ca", "cert", "key", "token", "timeout"};
  char **slots[] = {&ctx->addr, &ctx->ca, &ctx->cert, &ctx->key, &ctx->token, &ctx->timeout};
  if (mu_yaml_node_kind(map) == MU_YAML_NULL) return 0;
  if (mu_yaml_node_kind(map) != MU_YAML_MAP) {
    field->err_line = mu_yaml_node_line(map);
    return mu_err_set(err, MU_EINVAL, "context '%s': expected a mapping, got %s", ctx->name,
                      mu_yaml_kind_name(mu_yaml_node_kind(map)));
  }
  for (size_t i = 0; i < mu_yaml_node_len(map); i++) {
    mu_yaml_node k = mu_yaml_node_key(map, i), v = mu_yaml_node_value(map, i);
    const char *key = mu_yaml_node_text(k);
    size_t f = 0;
    while (f < 6 && (key == NULL || strcmp(key, fields[f]) != 0)) f++;
    field->err_line = mu_yaml_node_line(k);
    if (f == 6)
      return mu_err_set(err, MU_EINVAL,
                        "context '%s': unknown field '%s' (known: addr, ca, cert, key, token, "
                        "timeout)",
                        ctx->name, key ? key : "?");
    const char *text = mu_yaml_node_text(v);
    if (mu_yaml_node_kind(v) != MU_YAML_SCALAR || text == NULL || text[0] == '\0')
      return mu_err_set(err, MU_EINVAL, "context '%s': '%s': expected a string, got %s", ctx->name, key,
                        mu_yaml_kind_name(mu_yaml_node_kind(v)));
    if (*slots[f] != NULL) return mu_err_set(err, MU_EINVAL, "context '%s': '%s' given twice", ctx->name, key);
    int is_path = f >= 1 && f <= 3;
    *slots[f] = is_path ? resolve_path(cfg->path, text) : strdup(text);
    if (*slots[f] == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  return 0;
}

static int load_contexts(mu_cli_config *cfg, mu_yaml_field *field, mu_err *err) {
  mu_yaml_node map = field->value;
  if (mu_yaml_node_kind(map) == MU_YAML_NULL) return 0;
  if (mu_yaml_node_kind(map) != MU_YAML_MAP)
    return mu_err_set(err, MU_EINVAL, "expected a mapping of context names, got %s",
                      mu_yaml_kind_name(mu_yaml_node_kind(map)));
  size_t n = mu_yaml_node_len(map);
  if (n > MU_CLI_CONTEXTS_MAX) return mu_err_set(err, MU_ENOSPC, "%zu contexts: at most %d", n, MU_CLI_CONTEXTS_MAX);
  cfg->contexts = calloc(n ? n : 1, sizeof *cfg->contexts);
  if (cfg->contexts == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    mu_yaml_node k = mu_yaml_node_key(map, i);
    const char *name = mu_yaml_node_text(k);
    if (name == NULL || !name_ok(name)) {
      field->err_line = mu_yaml_node_line(k);
      return mu_err_set(err, MU_EINVAL, "bad context name '%s' (1-127 of A-Z a-z 0-9 . _ - @ :)", name ? name : "?");
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(cfg->contexts[j].name, name) == 0) {
        field->err_line = mu_yaml_node_line(k);
        return mu_err_set(err, MU_EINVAL, "context '%s' given twice (first at line %d)", name,
                          mu_yaml_node_line(mu_yaml_node_key(map, j)));
      }
    snprintf(cfg->contexts[i].name, sizeof cfg->contexts[i].name, "%s", name);
    cfg->n = i + 1;
    if (load_context(cfg, field, mu_yaml_node_value(map, i), &cfg->contexts[i], err) != 0) return err->code;
  }
  return 0;
}

static int on_field(void *ud, mu_yaml_field *field, mu_err *err) {
  mu_cli_config *cfg = ud;
  if (strcmp(field->name, "contexts") == 0) return load_contexts(cfg, field, err);
  if (strcmp(field->name, "current_context") == 0) {
    const char *text = mu_yaml_node_text(field->value);
    if (mu_yaml_node_kind(field->value) == MU_YAML_NULL) return 0;
    if (mu_yaml_node_kind(field->value) != MU_YAML_SCALAR || !name_ok(text))
      return mu_err_set(err, MU_EINVAL, "expected a context name");
    snprintf(cfg->current, sizeof cfg->current, "%s", text);
    return 0;
  }
  return mu_err_set(err, MU_EINVAL, "unknown field (known fields: current_context, contexts)");
}

int mu_cli_config_load(const char *path, mu_cli_config *cfg, mu_err *err) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->path, sizeof cfg->path, "%s", path);
  if (access(path, F_OK) != 0) return 0;
  cfg->exists = 1;
  mu_yaml_doc *doc = NULL;
  if (mu_yaml_doc_load(path, MU_CLI_CONFIG_MAX_BYTES, &doc, err) != 0) return err->code;
  int rc = mu_yaml_doc_walk(doc, on_field, cfg, err);
  mu_yaml_doc_free(doc);
  if (rc != 0) return rc;
  if (cfg->current[0] != '\0' && mu_cli_config_find(cfg, cfg->current) == NULL) {
    char names[512];
    mu_cli_config_names(cfg, names, sizeof names);
    return mu_err_set(err, MU_EINVAL, "%s: current_context '%s' is not among the contexts (%s)", path, cfg->current,
                      names);
  }
  return 0;
}

const mu_cli_context *mu_cli_config_find(const mu_cli_config *cfg, const char *name) {
  for (size_t i = 0; i < cfg->n; i++)
    if (strcmp(cfg->contexts[i].name, name) == 0) return &cfg->contexts[i];
  return NULL;
}

void mu_cli_config_names(const mu_cli_config *cfg, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < cfg->n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", cfg->contexts[i].name);
  if (cfg->n == 0) snprintf(buf, size, "(none)");
}

int mu_cli_config_set_current(const char *path, const char *name, mu_err *err) {
  if (!name_ok(name)) return mu_err_set(err, MU_EINVAL, "bad context name '%s'", name);
  FILE *in = fopen(path, "r");
  if (in == NULL) return mu_err_set(err, MU_EIO, "%s: %s", path, strerror(errno));
  struct stat st;
  mode_t mode = fstat(fileno(in), &st) == 0 ? st.st_mode & 07777 : 0600;
  char tmp[PATH_MAX + 16];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(tmp, "w");
  if (out == NULL) {
    fclose(in);
    return mu_err_set(err, MU_EIO, "%s: %s", tmp, strerror(errno));
  }
  fchmod(fileno(out), mode);
  char line[4096];
  int done = 0;
  size_t total = 0;
  while (fgets(line, sizeof line, in) != NULL) {
    total += strlen(line);
    if (total > MU_CLI_CONFIG_MAX_BYTES) break;
    if (!done && strncmp(line, "current_context:", 16) == 0) {
      fprintf(out, "current_context: %s\n", name);
      done = 1;
      continue;
    }
    if (!done && line[0] != '#' && line[0] != '\n' && line[0] != ' ' && line[0] != '-') {
      fprintf(out, "current_context: %s\n", name); /* before the first top-level field */
      done = 1;
    }
    fputs(line, out);
  }
  if (!done) fprintf(out, "current_context: %s\n", name);
  int bad = ferror(in) || total > MU_CLI_CONFIG_MAX_BYTES;
  fclose(in);
  if (fclose(out) != 0 || bad) {
    unlink(tmp);
    return mu_err_set(err, MU_EIO, "%s: cannot rewrite it", path);
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return mu_err_set(err, MU_EIO, "%s: %s", path, strerror(e));
  }
  return 0;
}

void mu_cli_config_free(mu_cli_config *cfg) {
  for (size_t i = 0; i < cfg->n; i++) {
    mu_cli_context *c = &cfg->contexts[i];
    free(c->addr);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c->token);
    free(c->timeout);
  }
  free(cfg->contexts);
  cfg->contexts = NULL;
  cfg->n = 0;
}
