/* The table-driven core shared by agent_config and server_config: a config struct is
 * described by a table of typed fields (name, kind, offset, bounds), and one set of
 * validators fills it from a YAML file or from command-line flags, so both sources accept
 * exactly the same values and report them the same way. */
#ifndef MU_CONFIG_FIELD_H
#define MU_CONFIG_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

#define MU_CFG_ID_MAX 128                  /* bytes of an agent or member id */
#define MU_CFG_PATH_MAX 1024               /* bytes of a path, with its NUL */
#define MU_CFG_ADDR_MAX 264                /* bytes of HOST:PORT, with its NUL */
#define MU_CFG_PREFIX_MAX 256              /* bytes of an etcd key prefix, with its NUL */
#define MU_CFG_FILE_MAX_BYTES (256 * 1024) /* a config file bigger than this is refused */

typedef enum {
  MU_CF_ID,          /* char[]: [A-Za-z0-9._-]{1,128} */
  MU_CF_MEMBER_ID,   /* char[]: [A-Za-z0-9._:-]{1,128} */
  MU_CF_PATH,        /* char[]: non-empty path */
  MU_CF_PREFIX,      /* char[]: etcd prefix, starts and ends with '/' */
  MU_CF_ADDR,        /* char[]: HOST:PORT */
  MU_CF_OPT_ADDR,    /* char[]: HOST:PORT or "" (off) */
  MU_CF_ADDR_LIST,   /* mu_strlist of HOST:PORT, at least min items */
  MU_CF_URL_LIST,    /* mu_strlist of http(s) URLs, at least min items */
  MU_CF_PATH_LIST,   /* mu_strlist of paths */
  MU_CF_PATH_APPEND, /* flag only: appends one path to the mu_strlist (--trust-key) */
  MU_CF_DURATION,    /* int64_t milliseconds in [min, max] */
  MU_CF_SIZE,        /* uint64_t bytes in [min, max] */
  MU_CF_COUNT,       /* uint32_t in [min, max] */
  MU_CF_BOOL,        /* bool */
  MU_CF_LOG_LEVEL,   /* mu_log_level */
  MU_CF_LOG_FORMAT,  /* mu_log_format */
  MU_CF_LABELS,      /* mu_labels */
  MU_CF_PLUGINS,     /* mu_labels "TYPE.SETTING" -> value, from {TYPE: {SETTING: value}};
                      * settings: isolation (in-process|process) */
  MU_CF_QUEUES,      /* mu_labels "NAME.SETTING" -> value, from {NAME: {SETTING: value}};
                      * settings: weight (1..1000), max_running (0..1000000) */
} mu_cfg_kind;

typedef struct mu_cfg_field {
  const char *name; /* snake_case, as in files; flags use dashes */
  mu_cfg_kind kind;
  size_t offset;    /* of the member in the config struct */
  size_t size;      /* sizeof the member (buffer size for char[] kinds) */
  int64_t min, max; /* bounds for numbers; min items for lists */
} mu_cfg_field;

/* Called after a field was set successfully (file or flag); lets a config derive defaults
 * from other fields (musterd's advertise from listen). May be NULL. */
typedef void (*mu_cfg_after_set_fn)(void *cfg, const mu_cfg_field *field);

typedef struct mu_cfg_table {
  const char *what; /* "agent" or "server", for messages */
  const mu_cfg_field *fields;
  size_t n;
  mu_cfg_after_set_fn after_set;
} mu_cfg_table;

/* Overlays the YAML file at path onto cfg. Errors read "FILE:LINE: field 'NAME': ..." (see
 * yaml_doc.h for file-level errors). Fields before the bad one may already be applied. */
int mu_cfg_load(void *cfg, const mu_cfg_table *table, const char *path, mu_err *err);

/* Sets one field from a flag's text. key may use dashes or underscores; errors read
 * "--key-name: ..." and an unknown key is MU_EINVAL "--key: unknown option". */
int mu_cfg_set(void *cfg, const mu_cfg_table *table, const char *key, const char *value, mu_err *err);

/* Frees the lists and label sets the table's fields own (char[] fields own nothing). */
void mu_cfg_free(void *cfg, const mu_cfg_table *table);

/* Copies src into dst (size bytes) or fails with MU_EINVAL when it does not fit. */
int mu_cfg_copy_str(char *dst, size_t size, const char *src, mu_err *err);

/* This host's name (gethostname) made into a valid id: bad characters become '-', cut to
 * size - 1 bytes; "localhost" when it cannot be read. */
void mu_cfg_default_id(char *buf, size_t size);

#endif
