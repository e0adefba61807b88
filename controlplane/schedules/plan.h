/* A schedule's rules and the decisions made from them, with no network and no clock of its
 * own (the module passes "now"): which slots are due, which of the missed ones are caught up,
 * what a slot does when the previous job still runs, and each slot's jitter. schedules.c
 * applies them; plan_test.c checks them against tables. */
#ifndef MU_CP_SCHEDULES_PLAN_H
#define MU_CP_SCHEDULES_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/cron/cron.h"
#include "lib/cron/tz.h"
#include "muster/v1/schedule.pb-c.h"

#define MU_SCHEDULE_NAME_MAX 64
#define MU_SCHEDULE_DEFAULT_WINDOW_S 3600
#define MU_SCHEDULE_MAX_JITTER_MS (24LL * 3600 * 1000)
#define MU_SCHEDULE_MAX_WINDOW_S (366LL * 24 * 3600)

typedef enum { MU_OVERLAP_SKIP = 0, MU_OVERLAP_QUEUE, MU_OVERLAP_CANCEL_PREVIOUS } mu_overlap;
typedef enum { MU_CATCH_UP_NONE = 0, MU_CATCH_UP_LATEST, MU_CATCH_UP_ALL } mu_catch_up;

/* A schedule's parsed rules; owns cron and tz. */
typedef struct mu_schedule_rules {
  mu_cron *cron;
  mu_tz *tz;
  int64_t jitter_ms;
  mu_overlap overlap;
  mu_catch_up catch_up;
  int64_t window_s; /* catch-up window */
} mu_schedule_rules;

/* "[A-Za-z0-9._-]{1,64}", not "." or "..": 0, or MU_EINVAL naming the bad character. */
int mu_schedule_name_check(const char *name, mu_err *err);

/* Parses and checks spec's rules (not its job): name, cron, tz (from tz_dir, NULL: the
 * system's), jitter, overlap, catch-up and its window. Errors (MU_EINVAL, MU_ENOENT for an
 * unknown zone) name the field and the bad value: "--cron: cron field 3 (day of month): '32'
 * is out of range 1-31", "--overlap: 'sometimes' is not one of skip, queue,
 * cancel-previous". Fills defaults into spec ("UTC", "skip", "none", "1h"). On success the
 * caller frees *ret with mu_schedule_rules_free. */
int mu_schedule_rules_parse(Muster__V1__ScheduleSpec *spec, const char *tz_dir, mu_schedule_rules *ret, mu_err *err);
void mu_schedule_rules_free(mu_schedule_rules *r);

/* The jitter of one slot: 0..jitter_ms, the same for (name, slot_s) on every member, so a
 * new leader fires a slot when the old one would have. */
int64_t mu_schedule_jitter_ms(const char *name, int64_t slot_s, int64_t jitter_ms);

/* The slot instant of the first slot after after_s, and when it is due (slot + jitter, ms);
 * -1 / -1 when the expression has no more fire times. */
int64_t mu_schedule_next(const mu_schedule_rules *r, const char *name, int64_t after_s, int64_t *ret_due_ms);

/* What is due at now_ms for a schedule whose slots up to cursor_s are handled. A slot is due
 * once slot + jitter <= now; it is on time when it became due at most on_time_ms ago, else it
 * was missed (the leader was down or busy). On-time slots all fire; missed ones follow
 * catch_up: none skips them, latest fires only the newest missed one within the window (and
 * only when no slot is on time), all fires every missed one within the window. Slots older
 * than the window are skipped. At most max_fire slots are put in fire[] (oldest first), and
 * *ret_cursor is the last slot decided (fired or skipped): the rest waits for the next call.
 * *ret_skipped counts missed slots skipped that were looked at (slots before the window, or
 * before now - on_time_ms without catch-up, are skipped without being counted). */
size_t mu_schedule_due(const mu_schedule_rules *r, const char *name, int64_t cursor_s, int64_t now_ms,
                       int64_t on_time_ms, int64_t *fire, size_t max_fire, int64_t *ret_cursor, size_t *ret_skipped);

/* What a due slot does given the previous job of the schedule. */
typedef enum {
  MU_SLOT_FIRE = 0,        /* create the job now */
  MU_SLOT_SKIP,            /* record the slot as skipped (previous still running) */
  MU_SLOT_QUEUE,           /* record it as queued: its job starts when the previous ends */
  MU_SLOT_CANCEL_AND_FIRE, /* cancel the previous job, then create this one */
} mu_slot_action;

/* previous_running: the schedule's latest job has not finished; queued: a slot already waits
 * for it (queue keeps one; a further slot is skipped). */
mu_slot_action mu_schedule_overlap(mu_overlap o, int previous_running, int queued);

const char *mu_overlap_name(mu_overlap o);
const char *mu_catch_up_name(mu_catch_up c);

#endif
