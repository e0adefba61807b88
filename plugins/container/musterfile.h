/* Musterfile: the documented subset of the Dockerfile syntax that `muster image build` reads
 * (docs/images.md, "Musterfile reference").
 *
 * Instructions: FROM, COPY, ADD (local sources only), RUN, ENV, ARG, WORKDIR, USER,
 * ENTRYPOINT, CMD, LABEL, EXPOSE. Lines end with `\` to continue; `#` lines are comments
 * (also inside a continuation); parser directives (`# syntax=`, `# escape=`) are comments
 * too. `$VAR`, `${VAR}`, `${VAR:-word}` and `${VAR:+word}` are replaced in FROM, COPY, ADD,
 * ENV, ARG, WORKDIR, USER, LABEL and EXPOSE from the ARGs and ENVs declared above (ARGs
 * before FROM only in FROM), never in RUN, CMD or ENTRYPOINT (the shell does that at run
 * time). Single quotes keep text as written, `\$` is a literal dollar.
 * Refused with the line number: any other instruction, a second FROM, ADD of a URL, a COPY
 * or ADD source that leaves the context lexically (`..` above the top), COPY --from and any
 * other unknown flag, malformed quoting, and more than the limits below. (A source that
 * leaves the context through a symlink is refused by the builder, which sees the files.) */
#ifndef MU_MUSTERFILE_H
#define MU_MUSTERFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/base/err.h"

typedef enum {
  MU_MF_FROM = 1,
  MU_MF_COPY,
  MU_MF_ADD,
  MU_MF_RUN,
  MU_MF_ENV,
  MU_MF_ARG,
  MU_MF_WORKDIR,
  MU_MF_USER,
  MU_MF_ENTRYPOINT,
  MU_MF_CMD,
  MU_MF_LABEL,
  MU_MF_EXPOSE,
} mu_mf_kind;

/* One instruction, with its arguments after substitution:
 *   FROM        [image]
 *   COPY, ADD   [src..., dest]   srcs relative to the context, cleaned ("a/b", "." for all)
 *   RUN, ENTRYPOINT, CMD  argv   (shell form: ["/bin/sh", "-c", text])
 *   ENV, LABEL  [key, value, key, value, ...]
 *   ARG         [name, value]    value from --build-arg, else the default; NULL when neither
 *   WORKDIR, USER [value]
 *   EXPOSE      ["80/tcp", ...]  ("/tcp" added when no protocol is given) */
typedef struct mu_mf_step {
  mu_mf_kind kind;
  int line;   /* the instruction's first line, 1-based */
  char *text; /* the instruction as written, continuations joined (history, messages) */
  char **args;
  size_t n_args;
  bool shell_form; /* RUN, ENTRYPOINT, CMD written as a shell command rather than JSON */
  char *chown;     /* COPY/ADD --chown=UID[:GID] (numbers only); NULL when not given */
} mu_mf_step;

typedef struct mu_musterfile {
  mu_mf_step *steps;
  size_t n_steps;
  char **unused_args; /* --build-arg names no ARG declared (Docker warns about these) */
  size_t n_unused_args;
} mu_musterfile;

typedef struct mu_mf_limits {
  size_t max_bytes; /* the file; 0 = 1 MiB */
  size_t max_steps; /* instructions; 0 = 1000 */
} mu_mf_limits;

/* Parses text (len bytes; NULs refused). build_args: NULL-terminated "K=V" (may be NULL).
 * On success *ret owns everything (free with mu_musterfile_free). On failure err names the
 * line: "Musterfile line 7: unknown instruction VOLUME (supported: ...)". MU_EINVAL for bad
 * input, MU_ENOSPC past a limit, MU_ENOTSUP for a known Dockerfile instruction we do not
 * build. */
int mu_musterfile_parse(const char *text, size_t len, const char *const *build_args, const mu_mf_limits *limits,
                        mu_musterfile *ret, mu_err *err);
void mu_musterfile_free(mu_musterfile *mf);

/* "COPY" for MU_MF_COPY etc. */
const char *mu_mf_kind_name(mu_mf_kind k);

#endif
