/* Cron expressions and their fire times in a time zone (schedules, `muster schedule`).
 *
 * Syntax: 5 fields "MIN HOUR DOM MONTH DOW" or 6 with seconds first "SEC MIN HOUR DOM MONTH
 * DOW"; each field a comma list of `*`, `N`, `A-B`, `*\/S`, `A-B/S` or `N/S` (from N to the
 * end in steps of S); months JAN-DEC and days SUN-SAT by name too (any case); DOW 0-7 with 0
 * and 7 both Sunday. Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight),
 * @hourly. `L`, `W`, `#` and `?` (Quartz extensions) and @reboot are refused by name.
 * Day rule (Vixie cron's): when both DOM and DOW are restricted (neither starts with `*`),
 * a day matches if EITHER does; when one starts with `*` (even `*\/2`), it must match both.
 *
 * Fire times are wall-clock times in the zone: a time that occurs twice (clocks going back)
 * fires once, at its first occurrence; a time that does not exist (clocks going forward)
 * fires once, at the instant the clocks jumped (02:30 on a spring-forward night fires at
 * 03:00 new time); several skipped times fire once together. Every instant is a whole second. */
#ifndef MU_CRON_CRON_H
#define MU_CRON_CRON_H

#include <stdint.h>

#include "lib/base/err.h"
#include "lib/cron/tz.h"

typedef struct mu_cron mu_cron;

/* Parses expr. Errors (MU_EINVAL) name the field and the bad token: "cron field 3 (day of
 * month): '32' is out of range 1-31", "cron: expected 5 or 6 fields, got 4", "cron field 5
 * (day of week): 'L' (last) is not supported", and a date that never comes: "cron: never
 * fires (no month in '2' has day '30')". Caller frees with mu_cron_free. */
int mu_cron_parse(const char *expr, mu_cron **ret, mu_err *err);
void mu_cron_free(mu_cron *c);

/* Whether the expression has a seconds field (6 fields or none of the macros). */
int mu_cron_has_seconds(const mu_cron *c);

/* The first fire time strictly after `after` (seconds since the epoch) in tz, or -1 when
 * there is none within the next 10 years (e.g. only Feb 29 of years that are not leap for a
 * while is fine; a day that never comes was refused at parse). */
int64_t mu_cron_next(const mu_cron *c, const mu_tz *tz, int64_t after);

#endif
