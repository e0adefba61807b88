/* Resolving "user[:group]" for a task and refusing a user switch the agent cannot make.
 * The switch itself happens in muster-exec (exec_helper.c) after it joins its cgroup. */
#include "agent/exec/runas.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool all_digits(const char *s) {
  if (*s == '\0') return false;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return false;
  return true;
}

int mu_runas_resolve(const char *spec, const char *host, mu_runas *ret, mu_err *err) {
  memset(ret, 0, sizeof *ret);
  if (host == NULL) host = "this host";
  if (spec == NULL || *spec == '\0') return 0;
  char user[64], group[64] = "";
  if (strlen(spec) >= sizeof user) return mu_err_set(err, MU_EINVAL, "run_as: \"%.40s...\" is too long", spec);
  snprintf(user, sizeof user, "%s", spec);
  char *colon = strchr(user, ':');
  if (colon != NULL) {
    *colon = '\0';
    snprintf(group, sizeof group, "%s", colon + 1);
    if (group[0] == '\0') return mu_err_set(err, MU_EINVAL, "run_as: empty group in \"%s\"", spec);
  }
  char buf[4096];
  if (all_digits(user)) {
    ret->uid = (uid_t)strtoul(user, NULL, 10);
    struct passwd pw, *res = NULL;
    ret->gid = (getpwuid_r(ret->uid, &pw, buf, sizeof buf, &res) == 0 && res) ? pw.pw_gid : (gid_t)ret->uid;
  } else {
    struct passwd pw, *res = NULL;
    int e = getpwnam_r(user, &pw, buf, sizeof buf, &res);
    if (e != 0 && e != ENOENT && e != ESRCH)
      return mu_err_set(err, MU_EIO, "run_as: cannot look up user '%s' on %s: %s", user, host, strerror(e));
    if (res == NULL) return mu_err_set(err, MU_EINVAL, "run_as: user '%s' does not exist on %s", user, host);
    ret->uid = pw.pw_uid;
    ret->gid = pw.pw_gid;
  }
  if (group[0] != '\0') {
    if (all_digits(group)) {
      ret->gid = (gid_t)strtoul(group, NULL, 10);
    } else {
      struct group gr, *gres = NULL;
      if (getgrnam_r(group, &gr, buf, sizeof buf, &gres) != 0 || gres == NULL)
        return mu_err_set(err, MU_EINVAL, "run_as: group '%s' does not exist on %s", group, host);
      ret->gid = gr.gr_gid;
    }
  }
  ret->set = true;
  snprintf(ret->name, sizeof ret->name, "%s", spec);
  return 0;
}

int mu_runas_check(const mu_runas *ra, mu_err *err) {
  if (ra == NULL || !ra->set) return 0;
  if (geteuid() == 0) return 0;
  if (ra->uid == geteuid() && ra->gid == getegid()) return 0;
  return mu_err_set(err, MU_EPERM,
                    "run_as \"%s\": the agent runs as uid %u, not root, so it cannot switch to "
                    "uid %u",
                    ra->name, (unsigned)geteuid(), (unsigned)ra->uid);
}
