/* The shell plugin's command policy: glob rules (fnmatch) that allow or deny the commands a
 * task may run, checked before start against every logical line of a script (and each
 * `;`/`&&`/`||`/`|`/`&` segment of it) or against a `command` argv joined by spaces. A
 * guard-rail against mistakes, not a sandbox: a script can always build a command at run time.
 * Internal to the plugin; see docs/plugins.md "Shell command policy". */
#ifndef MU_SHELL_POLICY_H
#define MU_SHELL_POLICY_H

#include <stddef.h>

#define SHELL_POLICY_MAX_RULES 1024
#define SHELL_POLICY_MAX_PATTERN 1024
#define SHELL_POLICY_MAX_FILE (1 << 20)

typedef struct shell_policy shell_policy;

/* Parses `{"deny": [GLOB...], "allow": [GLOB...]}` (both optional, no other keys). origin
 * names the source in messages. On success *ret is owned by the caller (shell_policy_free);
 * on failure returns -EINVAL and errbuf (MUSTER_ERRBUF_SIZE bytes) names the bad part. */
int shell_policy_parse(const char *json_text, const char *origin, shell_policy **ret, char *errbuf);

/* Reads and parses a policy file (at most SHELL_POLICY_MAX_FILE bytes). Blocking: call it only
 * at plugin load. Errors as shell_policy_parse, plus -EIO when the file cannot be read. */
int shell_policy_load(const char *path, shell_policy **ret, char *errbuf);

void shell_policy_free(shell_policy *p);

/* Checks script text (len bytes, NUL not required). 0 when allowed; -EPERM with errbuf
 * naming the rule and line, e.g.
 * `shell policy: deny rule 2 "*mkfs*" matches line 2 "mkfs.ext4 /dev/sda"`. */
int shell_policy_check_script(const shell_policy *p, const char *text, size_t len, char *errbuf);

/* Checks one command line (argv joined by spaces) as a single logical line; the message says
 * `command "..."` instead of `line N "..."`. */
int shell_policy_check_command(const shell_policy *p, const char *cmdline, char *errbuf);

#endif
