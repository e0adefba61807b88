/* Time zones from the system tz database (TZif files, RFC 8536, read and parsed here: no TZ
 * environment variable, no libc time zone state, so any thread may use any zone). Times past
 * the file's last transition follow its POSIX TZ footer ("CET-1CEST,M3.5.0,M10.5.0/3"). */
#ifndef MU_CRON_TZ_H
#define MU_CRON_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"

typedef struct mu_tz mu_tz;

#define MU_TZ_DIR "/usr/share/zoneinfo"
#define MU_TZ_MAX_FILE (256u * 1024u) /* the largest real zone file is under 4 KiB */

/* Loads zone name ("Europe/Berlin", "UTC") from dir (NULL: MU_TZ_DIR). "UTC" and "Etc/UTC"
 * need no file. Errors: MU_EINVAL for a name that is not a zone name (empty, absolute, "..",
 * other characters than letters, digits and "/_+-"), MU_ENOENT "unknown time zone 'X'
 * (no X under DIR)", MU_EINVAL for a file that is not a valid TZif file. Caller frees. */
int mu_tz_load(const char *name, const char *dir, mu_tz **ret, mu_err *err);

/* Parses TZif bytes (v1, or v2+ whose 64-bit part is used) and its footer; name is kept for
 * messages. MU_EINVAL naming what is wrong. */
int mu_tz_parse(const char *name, const uint8_t *data, size_t len, mu_tz **ret, mu_err *err);

/* A zone from a POSIX TZ rule alone ("EST5EDT,M3.2.0,M11.1.0", "UTC0"). */
int mu_tz_from_rule(const char *rule, mu_tz **ret, mu_err *err);

void mu_tz_free(mu_tz *tz);
const char *mu_tz_name(const mu_tz *tz);

/* UTC offset in seconds east of Greenwich at instant t (seconds since the epoch). */
int32_t mu_tz_offset(const mu_tz *tz, int64_t t);

/* The instant of a wall-clock time (local as seconds since the epoch "taken as UTC"):
 * - a time that exists once: that instant;
 * - a time that exists twice (the hour repeated when clocks go back): the first, earlier one;
 * - a time that does not exist (the hour skipped when clocks go forward): the instant the
 *   clocks jumped, i.e. the first existing time after it. */
int64_t mu_tz_resolve(const mu_tz *tz, int64_t local);

#endif
