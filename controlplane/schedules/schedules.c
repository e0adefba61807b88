/* The schedules module (schedules.h): the schedules and their slot records in memory (every
 * member, from the cluster's record events), and on the leader the timer that claims due
 * slots with a fenced create-only transaction, then creates their jobs and records them. */
#include "controlplane/schedules/schedules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "controlplane/jobspec.h"
#include "controlplane/persist.h"
#include "controlplane/records.h"
#include "controlplane/scheduler.h"
#include "controlplane/schedules/schedules_int.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"

#define LOG "schedules"
#define RETRY_MS 1000    /* after a failed write */
#define MAX_WAIT_MS 1000 /* the timer looks at least this often (clock steps, queued slots) */

static void kick(mu_schedules *ss);

static int single_mode(const mu_schedules *ss) { return ss->d->cluster->role == MU_ROLE_SINGLE; }

/* --- slots in memory --- */

static void slot_clear(mu_slot *s) {
  free(s->job_id);
  free(s->reason);
  s->job_id = s->reason = NULL;
}

static void set_owned(char **dst, const char *s) {
  free(*dst);
  *dst = s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static void slot_suffix(char buf[MU_SLOT_SUFFIX_SIZE], int64_t slot_s, int manual, int ms) {
  if (manual) snprintf(buf, MU_SLOT_SUFFIX_SIZE, "%012lld.m%03d", (long long)slot_s, ms);
  else snprintf(buf, MU_SLOT_SUFFIX_SIZE, "%012lld", (long long)slot_s);
}

static mu_slot *find_slot(mu_schedule *sc, const char *suffix) {
  for (size_t i = 0; i < sc->n_slots; i++)
    if (strcmp(sc->slots[i].suffix, suffix) == 0) return &sc->slots[i];
  return NULL;
}

/* Sets (or adds, in order) the slot suffix to *src's fields; NULL when out of memory. */
static mu_slot *store_slot(mu_schedule *sc, const mu_slot *src) {
  mu_slot *s = find_slot(sc, src->suffix);
  if (s == NULL) {
    if (sc->n_slots == sc->cap_slots) {
      size_t cap = sc->cap_slots ? sc->cap_slots * 2 : 8;
      mu_slot *grown = realloc(sc->slots, cap * sizeof *grown);
      if (grown == NULL) return NULL;
      sc->slots = grown;
      sc->cap_slots = cap;
    }
    size_t at = sc->n_slots;
    while (at > 0 && strcmp(sc->slots[at - 1].suffix, src->suffix) > 0) at--;
    memmove(&sc->slots[at + 1], &sc->slots[at], (sc->n_slots - at) * sizeof *sc->slots);
    sc->n_slots++;
    s = &sc->slots[at];
    memset(s, 0, sizeof *s);
    snprintf(s->suffix, sizeof s->suffix, "%s", src->suffix);
  }
  s->slot_s = src->slot_s;
  s->manual = src->manual;
  snprintf(s->state, sizeof s->state, "%s", src->state);
  set_owned(&s->job_id, src->job_id);
  set_owned(&s->reason, src->reason);
  s->claimed_at_ms = src->claimed_at_ms;
  s->created_at_ms = src->created_at_ms;
  return s;
}

static void drop_slot(mu_schedule *sc, const char *suffix) {
  mu_slot *s = find_slot(sc, suffix);
  if (s == NULL) return;
  size_t at = (size_t)(s - sc->slots);
  slot_clear(s);
  memmove(&sc->slots[at], &sc->slots[at + 1], (sc->n_slots - at - 1) * sizeof *sc->slots);
  sc->n_slots--;
}

static char *slot_json(const mu_slot *s, uint64_t term) {
  Muster__V1__SlotRecord rec = MUSTER__V1__SLOT_RECORD__INIT;
  Muster__V1__ScheduleSlot v = MUSTER__V1__SCHEDULE_SLOT__INIT;
  v.slot_s = s->slot_s;
  v.manual = s->manual != 0;
  v.state = (char *)s->state;
  v.job_id = s->job_id ? s->job_id : "";
  v.reason = s->reason ? s->reason : "";
  v.claimed_at_ms = s->claimed_at_ms;
  v.created_at_ms = s->created_at_ms;
  rec.v = MU_RECORD_VERSION;
  rec.slot = &v;
  rec.term = (int64_t)term;
  char *text = NULL;
  mu_record_encode(&rec.base, &text, NULL);
  return text;
}

/* Decodes a slot record's value into out (fields borrowed from *ret_rec, which the caller
 * frees). */
static int slot_decode(const char *suffix, const char *value, size_t len, mu_slot *out,
                       Muster__V1__SlotRecord **ret_rec, mu_err *err) {
  ProtobufCMessage *m = NULL;
  int rc = mu_record_decode(&muster__v1__slot_record__descriptor, value, len, &m, err);
  if (rc != 0) return rc;
  Muster__V1__SlotRecord *rec = (Muster__V1__SlotRecord *)m;
  if (rec->slot == NULL) {
    protobuf_c_message_free_unpacked(m, NULL);
    return mu_err_set(err, MU_EINVAL, "slot: missing");
  }
  memset(out, 0, sizeof *out);
  snprintf(out->suffix, sizeof out->suffix, "%s", suffix);
  out->slot_s = rec->slot->slot_s;
  out->manual = rec->slot->manual;
  snprintf(out->state, sizeof out->state, "%s", rec->slot->state);
  out->job_id = rec->slot->job_id;
  out->reason = rec->slot->reason;
  out->claimed_at_ms = rec->slot->claimed_at_ms;
  out->created_at_ms = rec->slot->created_at_ms;
  *ret_rec = rec;
  return 0;
}

/* The newest slot whose job was created (overlap's "previous job"), or NULL. */
static const mu_slot *latest_created(const mu_schedule *sc) {
  for (size_t i = sc->n_slots; i-- > 0;)
    if (strcmp(sc->slots[i].state, "created") == 0 && sc->slots[i].job_id != NULL) return &sc->slots[i];
  return NULL;
}

static void recompute_cursor(mu_schedule *sc) {
  sc->cursor_s = sc->rec->from_s;
  for (size_t i = 0; i < sc->n_slots; i++)
    if (!sc->slots[i].manual && sc->slots[i].slot_s > sc->cursor_s) sc->cursor_s = sc->slots[i].slot_s;
  sc->next_due_ms = -2;
}

/* --- schedules in memory --- */

mu_schedule *mu_schedules_find(mu_schedules *ss, const char *name) {
  for (size_t i = 0; i < ss->n; i++)
    if (strcmp(ss->items[i]->name, name) == 0) return ss->items[i];
  return NULL;
}

static void schedule_free(mu_schedule *sc) {
  if (sc == NULL) return;
  for (size_t i = 0; i < sc->n_slots; i++) slot_clear(&sc->slots[i]);
  free(sc->slots);
  mu_schedule_rules_free(&sc->rules);
  if (sc->rec != NULL) protobuf_c_message_free_unpacked(&sc->rec->base, NULL);
  free(sc->name);
  free(sc);
}

int mu_schedules_put_record(mu_schedules *ss, Muster__V1__ScheduleRecord *rec, mu_err *err) {
  mu_schedule_rules rules;
  int rc = rec->spec == NULL ? mu_err_set(err, MU_EINVAL, "spec: missing")
                             : mu_schedule_rules_parse(rec->spec, ss->tz_dir, &rules, err);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return rc;
  }
  mu_schedule *sc = mu_schedules_find(ss, rec->spec->name);
  if (sc != NULL) { /* an update: new rules, the same slots */
    mu_schedule_rules_free(&sc->rules);
    protobuf_c_message_free_unpacked(&sc->rec->base, NULL);
    sc->rec = rec;
    sc->rules = rules;
    if (sc->cursor_s < rec->from_s) sc->cursor_s = rec->from_s;
    sc->next_due_ms = -2;
    return 0;
  }
  if (ss->n == ss->cap) {
    size_t cap = ss->cap ? ss->cap * 2 : 16;
    mu_schedule **grown = realloc(ss->items, cap * sizeof *grown);
    if (grown != NULL) {
      ss->items = grown;
      ss->cap = cap;
    }
  }
  sc = ss->n < ss->cap ? calloc(1, sizeof *sc) : NULL;
  if (sc != NULL) sc->name = strdup(rec->spec->name);
  if (sc == NULL || sc->name == NULL) {
    free(sc);
    mu_schedule_rules_free(&rules);
    protobuf_c_message_free_unpacked(&rec->base, NULL);
    return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  sc->rec = rec;
  sc->rules = rules;
  sc->cursor_s = rec->from_s;
  sc->next_due_ms = -2;
  size_t at = ss->n;
  while (at > 0 && strcmp(ss->items[at - 1]->name, sc->name) > 0) at--;
  memmove(&ss->items[at + 1], &ss->items[at], (ss->n - at) * sizeof *ss->items);
  ss->items[at] = sc;
  ss->n++;
  kick(ss);
  return 0;
}

void mu_schedules_remove(mu_schedules *ss, const char *name) {
  for (size_t i = 0; i < ss->n; i++) {
    if (strcmp(ss->items[i]->name, name) != 0) continue;
    schedule_free(ss->items[i]);
    memmove(&ss->items[i], &ss->items[i + 1], (ss->n - i - 1) * sizeof *ss->items);
    ss->n--;
    return;
  }
}

char *mu_schedules_record_json(const Muster__V1__ScheduleRecord *rec) {
  char *text = NULL;
  mu_record_encode(&rec->base, &text, NULL);
  return text;
}

/* --- writes --- */

static void rel_to_key(const mu_schedules *ss, const char *rel, char *buf, size_t size) {
  snprintf(buf, size, "%s%s", ss->d->cfg.etcd_prefix, rel);
}

typedef struct write_ctx {
  mu_schedules_write_cb cb;
  mu_schedules_create_cb create_cb;
  void *ud;
} write_ctx;

static void on_batch(void *ud, const mu_store_batch_result *res, const mu_err *err) {
  write_ctx *wc = ud;
  (void)res;
  wc->cb(wc->ud, err);
  free(wc);
}

static void commit_batch(mu_schedules *ss, mu_store_batch *b, int rc, mu_err *err, mu_schedules_write_cb cb, void *ud) {
  write_ctx *wc = rc == 0 ? calloc(1, sizeof *wc) : NULL;
  if (rc == 0 && wc == NULL) rc = mu_err_set(err, MU_ENOMEM, "out of memory");
  if (rc == 0) {
    wc->cb = cb;
    wc->ud = ud;
    rc = mu_store_batch_commit(b, on_batch, wc, err);
    b = NULL;
    if (rc == 0) return;
    free(wc);
  }
  mu_store_batch_free(b);
  mu_cluster_note_write(ss->d, err);
  cb(ud, err);
}

void mu_schedules_write_put(mu_schedules *ss, const char *rel_key, const char *value, mu_schedules_write_cb cb,
                            void *ud) {
  mu_err err = {0};
  if (single_mode(ss)) {
    cb(ud, NULL);
    return;
  }
  char key[700];
  rel_to_key(ss, rel_key, key, sizeof key);
  mu_store_batch *b = mu_store_batch_new(ss->d->cluster->store);
  int rc = b ? mu_store_batch_put(b, key, value, 0, &err) : mu_err_set(&err, MU_ENOMEM, "out of memory");
  commit_batch(ss, b, rc, &err, cb, ud);
}

void mu_schedules_write_delete_tree(mu_schedules *ss, const char *rel_key, mu_schedules_write_cb cb, void *ud) {
  mu_err err = {0};
  if (single_mode(ss)) {
    cb(ud, NULL);
    return;
  }
  char key[700], sub[710];
  rel_to_key(ss, rel_key, key, sizeof key);
  snprintf(sub, sizeof sub, "%s/", key);
  mu_store_batch *b = mu_store_batch_new(ss->d->cluster->store);
  int rc = b ? mu_store_batch_delete(b, sub, true, &err) : mu_err_set(&err, MU_ENOMEM, "out of memory");
  if (rc == 0) rc = mu_store_batch_delete(b, key, false, &err);
  commit_batch(ss, b, rc, &err, cb, ud);
}

static void on_created(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err) {
  write_ctx *wc = ud;
  wc->create_cb(wc->ud, created, existing, err);
  free(wc);
}

void mu_schedules_write_create(mu_schedules *ss, const char *rel_key, const char *value, mu_schedules_create_cb cb,
                               void *ud) {
  mu_err err = {0};
  if (single_mode(ss)) { /* the caller looked in memory: nothing else writes */
    cb(ud, 1, NULL, NULL);
    return;
  }
  char key[700];
  rel_to_key(ss, rel_key, key, sizeof key);
  write_ctx *wc = calloc(1, sizeof *wc);
  if (wc == NULL) {
    mu_err_set(&err, MU_ENOMEM, "out of memory");
    cb(ud, 0, NULL, &err);
    return;
  }
  wc->create_cb = cb;
  wc->ud = ud;
  if (mu_store_create(ss->d->cluster->store, key, value, 0, on_created, wc, &err) != 0) {
    free(wc);
    mu_cluster_note_write(ss->d, &err);
    cb(ud, 0, NULL, &err);
  }
}

/* --- firing: claim, create the job, record it --- */

typedef struct fire_op {
  mu_schedules *ss;
  uint64_t gen;
  char name[MU_SCHEDULE_NAME_MAX + 1];
  mu_slot slot;       /* what is written (job_id, reason owned here) */
  int64_t new_cursor; /* the cursor once this slot is claimed (-1: manual) */
  int holds_busy;     /* the timer's op (else a trigger's) */
  mu_slot_action action;
  char prev_job[MU_SCHED_ID_SIZE]; /* cancel-previous: the job to cancel */
  mu_schedules_fired_cb done;      /* a trigger's */
  void *done_ud;
} fire_op;

static void op_end(fire_op *op, const mu_err *err) {
  mu_schedules *ss = op->ss;
  mu_schedule *sc = op->gen == ss->gen ? mu_schedules_find(ss, op->name) : NULL;
  if (sc != NULL && op->holds_busy) {
    if (sc->busy > 0) sc->busy--;
    if (err != NULL) sc->retry_at_ms = mu_now_ms() + RETRY_MS;
    sc->next_due_ms = -2;
  }
  if (op->done != NULL) op->done(op->done_ud, op->slot.job_id, op->slot.slot_s, err);
  slot_clear(&op->slot);
  free(op);
  kick(ss);
}

/* The op's schedule, or NULL (then the op has ended) when it is gone or the role changed. */
static mu_schedule *op_schedule(fire_op *op) {
  mu_schedules *ss = op->ss;
  mu_schedule *sc = op->gen == ss->gen && ss->running ? mu_schedules_find(ss, op->name) : NULL;
  if (sc == NULL) {
    mu_err e = {0};
    mu_err_set(&e, MU_ECANCELED, "schedule '%s' deleted or leader changed", op->name);
    op_end(op, &e);
  }
  return sc;
}

static void slot_rel_key(const fire_op *op, char *buf, size_t size) {
  snprintf(buf, size, "schedules/%s/slots/%s", op->name, op->slot.suffix);
}

static void on_slot_updated(void *ud, const mu_err *err) {
  fire_op *op = ud;
  mu_schedule *sc = op_schedule(op);
  if (sc == NULL) return;
  if (err != NULL) {
    mu_warn(LOG, "%s slot %s: recording job %s: %s", op->name, op->slot.suffix, op->slot.job_id ? op->slot.job_id : "-",
            err->msg);
    op_end(op, err);
    return;
  }
  store_slot(sc, &op->slot);
  if (strcmp(op->slot.state, "created") == 0) {
    op->ss->fired++;
    int64_t due = op->slot.slot_s * 1000 +
                  (op->slot.manual ? 0 : mu_schedule_jitter_ms(op->name, op->slot.slot_s, sc->rules.jitter_ms));
    op->ss->last_delay_ms = op->slot.created_at_ms - due;
  } else if (strcmp(op->slot.state, "failed") == 0) {
    op->ss->failed++;
  }
  mu_err e = {0};
  if (strcmp(op->slot.state, "failed") == 0) mu_err_set(&e, MU_EINVAL, "%s", op->slot.reason);
  op_end(op, strcmp(op->slot.state, "failed") == 0 ? &e : NULL);
}

static void on_claimed(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err);

/* Writes op's slot record: a put that then calls put_cb, or (put_cb NULL) the create-only
 * claim that then calls on_claimed. */
static void write_slot(fire_op *op, mu_schedules_write_cb put_cb) {
  char rel[400];
  slot_rel_key(op, rel, sizeof rel);
  char *v = slot_json(&op->slot, op->ss->d->sched->term);
  if (v == NULL) {
    mu_err e = {0};
    mu_err_set(&e, MU_ENOMEM, "encoding a slot record");
    op_end(op, &e);
    return;
  }
  if (put_cb != NULL) mu_schedules_write_put(op->ss, rel, v, put_cb, op);
  else mu_schedules_write_create(op->ss, rel, v, on_claimed, op);
  free(v);
}

static void update_slot(fire_op *op) { write_slot(op, on_slot_updated); }

static void on_job_stored(void *ud, const char *job_id, const mu_err *err) {
  fire_op *op = ud;
  (void)job_id;
  if (op_schedule(op) == NULL) return;
  if (err != NULL) { /* the claim stays: the next look (or leader) creates the job */
    mu_warn(LOG, "%s slot %s: job %s not stored: %s", op->name, op->slot.suffix, job_id, err->msg);
    op_end(op, err);
    return;
  }
  snprintf(op->slot.state, sizeof op->slot.state, "created");
  op->slot.created_at_ms = mu_now_ms();
  update_slot(op);
}

static int add_label(Muster__V1__JobSpec *spec, const char *key, const char *value) {
  Muster__V1__JobSpec__LabelsEntry **grown = realloc(spec->labels, (spec->n_labels + 1) * sizeof *grown);
  if (grown == NULL) return MU_ENOMEM;
  spec->labels = grown;
  Muster__V1__JobSpec__LabelsEntry *e = malloc(sizeof *e);
  if (e == NULL) return MU_ENOMEM;
  muster__v1__job_spec__labels_entry__init(e);
  e->key = strdup(key);
  e->value = strdup(value);
  if (e->key == NULL || e->value == NULL) {
    free(e->key);
    free(e->value);
    free(e);
    return MU_ENOMEM;
  }
  spec->labels[spec->n_labels++] = e;
  return 0;
}

int mu_schedules_template_job(mu_schedules *ss, const char *name, const char *const *args, size_t n_args,
                              Muster__V1__JobSpec **ret_spec, mu_err *err) {
  if (ss->instantiate == NULL) return mu_err_set(err, MU_EINVAL, "job templates are not available");
  return ss->instantiate(ss->d, name, args, n_args, ret_spec, err);
}

/* Creates the job op->slot.job_id names; the slot record is then updated (created, or failed
 * when the job is refused now: its targets are gone, say). */
static void create_job(fire_op *op, mu_schedule *sc) {
  mu_schedules *ss = op->ss;
  mu_daemon *d = ss->d;
  mu_err err = {0};
  if (op->action == MU_SLOT_CANCEL_AND_FIRE && op->prev_job[0] != '\0') {
    mu_job *prev = mu_sched_find(d->sched, op->prev_job);
    uint32_t n = 0;
    char why[200];
    snprintf(why, sizeof why, "schedule %s: slot %lld starts (overlap cancel-previous)", op->name,
             (long long)op->slot.slot_s);
    if (prev != NULL && !mu_job_finished(prev)) mu_sched_cancel(d->sched, prev, why, &n, &err);
  }
  const Muster__V1__ScheduleSpec *ssp = sc->rec->spec;
  Muster__V1__JobSpec *spec = NULL;
  if (ssp->template_[0] != '\0') { /* the template as it is now, with the schedule's params */
    int trc = mu_schedules_template_job(ss, ssp->template_, (const char *const *)ssp->template_params,
                                        ssp->n_template_params, &spec, &err);
    if (trc != 0 && trc != MU_ENOMEM) {
      mu_err_prefix(&err, "template");
      mu_warn(LOG, "%s slot %s: job refused: %s", op->name, op->slot.suffix, err.msg);
      snprintf(op->slot.state, sizeof op->slot.state, "failed");
      set_owned(&op->slot.reason, err.msg);
      update_slot(op);
      return;
    }
  } else {
    spec = mu_jobspec_copy(ssp->job);
  }
  char slot_text[32];
  snprintf(slot_text, sizeof slot_text, "%lld", (long long)op->slot.slot_s);
  if (spec == NULL || add_label(spec, "schedule", op->name) != 0 || add_label(spec, "schedule.slot", slot_text) != 0) {
    if (spec != NULL) protobuf_c_message_free_unpacked(&spec->base, NULL);
    mu_err_set(&err, MU_ENOMEM, "out of memory");
    op_end(op, &err);
    return;
  }
  if (spec->name[0] == '\0') {
    if (spec->name != protobuf_c_empty_string) free(spec->name);
    spec->name = strdup(op->name);
  }
  mu_job *job = NULL;
  if (mu_sched_submit_id(d->sched, op->slot.job_id, spec, NULL, &job, &err) != 0) {
    if (err.code == MU_ENOMEM) {
      op_end(op, &err);
      return;
    }
    mu_warn(LOG, "%s slot %s: job refused: %s", op->name, op->slot.suffix, err.msg);
    snprintf(op->slot.state, sizeof op->slot.state, "failed");
    set_owned(&op->slot.reason, err.msg);
    update_slot(op);
    return;
  }
  mu_info(LOG, "%s slot %s: job %s", op->name, op->slot.suffix, job->id);
  if (job->submit_pending) mu_persist_submit_then(d, job, on_job_stored, op);
  else on_job_stored(op, job->id, NULL);
}

static void on_claimed(void *ud, int created, const mu_etcd_kv *existing, const mu_err *err) {
  fire_op *op = ud;
  mu_schedules *ss = op->ss;
  mu_schedule *sc = op_schedule(op);
  if (sc == NULL) return;
  if (err != NULL) { /* outcome unknown: the same claim again later finds it if it landed */
    mu_warn(LOG, "%s slot %s: claim failed: %s", op->name, op->slot.suffix, err->msg);
    op_end(op, err);
    return;
  }
  if (!created) { /* another leader claimed it: take its record, never fire it again */
    ss->claim_conflicts++;
    Muster__V1__SlotRecord *rec = NULL;
    mu_slot theirs;
    mu_err derr = {0};
    if (existing != NULL &&
        slot_decode(op->slot.suffix, existing->value, existing->value_len, &theirs, &rec, &derr) == 0) {
      store_slot(sc, &theirs);
      protobuf_c_message_free_unpacked(&rec->base, NULL);
    }
    mu_info(LOG, "%s slot %s: claimed already", op->name, op->slot.suffix);
    if (op->new_cursor > sc->cursor_s) sc->cursor_s = op->new_cursor;
    mu_err e = {0};
    mu_err_set(&e, MU_EEXIST, "slot %s of schedule %s was claimed already", op->slot.suffix, op->name);
    op_end(op, op->done ? &e : NULL);
    return;
  }
  store_slot(sc, &op->slot);
  if (op->new_cursor > sc->cursor_s) sc->cursor_s = op->new_cursor;
  if (ss->exit_after_claim[0] != '\0' && strcmp(ss->exit_after_claim, op->name) == 0 &&
      strcmp(op->slot.state, "claimed") == 0) {
    mu_warn(LOG, "%s: exiting after the claim of slot %s (%s set)", op->name, op->slot.suffix,
            MU_SCHEDULES_TEST_EXIT_ENV);
    _exit(3);
  }
  if (strcmp(op->slot.state, "claimed") == 0) {
    create_job(op, sc);
    return;
  }
  if (strcmp(op->slot.state, "skipped") == 0) ss->skipped_overlap++;
  op_end(op, NULL);
}

static fire_op *op_new(mu_schedules *ss, mu_schedule *sc, int64_t slot_s, int manual) {
  fire_op *op = calloc(1, sizeof *op);
  if (op == NULL) return NULL;
  op->ss = ss;
  op->gen = ss->gen;
  snprintf(op->name, sizeof op->name, "%s", sc->name);
  int64_t now = mu_now_ms();
  slot_suffix(op->slot.suffix, slot_s, manual, (int)(now % 1000));
  op->slot.slot_s = slot_s;
  op->slot.manual = manual;
  op->slot.claimed_at_ms = now;
  op->new_cursor = -1;
  return op;
}

/* Claims op's slot (create-only), then what its state says. */
static void claim(fire_op *op, mu_schedule *sc) {
  if (find_slot(sc, op->slot.suffix) != NULL) { /* SINGLE mode's claim, and a cheap check */
    on_claimed(op, 0, NULL, NULL);
    return;
  }
  write_slot(op, NULL);
}

static void on_resume_written(void *ud, const mu_err *err) {
  fire_op *op = ud;
  mu_schedule *sc = op_schedule(op);
  if (sc == NULL) return;
  if (err != NULL) {
    op_end(op, err);
    return;
  }
  store_slot(sc, &op->slot);
  create_job(op, sc);
}

/* A claimed slot without its job (a leader stopped between claim and job, or a queued slot
 * whose turn came): its job is created under a new id, written into the claim first. */
static void resume_slot(mu_schedules *ss, mu_schedule *sc, const mu_slot *s) {
  mu_daemon *d = ss->d;
  fire_op *op = op_new(ss, sc, s->slot_s, s->manual);
  if (op == NULL) return;
  snprintf(op->slot.suffix, sizeof op->slot.suffix, "%s", s->suffix);
  op->slot.claimed_at_ms = s->claimed_at_ms;
  op->holds_busy = 1;
  op->action = MU_SLOT_FIRE;
  sc->busy++;
  mu_job *job = s->job_id ? mu_sched_find(d->sched, s->job_id) : NULL;
  if (job != NULL && job->ready) { /* the job was stored: only the record is behind */
    mu_info(LOG, "%s slot %s: job %s was stored; recording it", sc->name, s->suffix, s->job_id);
    set_owned(&op->slot.job_id, s->job_id);
    snprintf(op->slot.state, sizeof op->slot.state, "created");
    op->slot.created_at_ms = job->created_at_ms;
    update_slot(op);
    return;
  }
  char id[MU_SCHED_ID_SIZE];
  mu_sched_new_id(d->sched, id);
  mu_info(LOG, "%s slot %s: %s without its job %s; creating it as %s", sc->name, s->suffix, s->state,
          s->job_id ? s->job_id : "-", id);
  set_owned(&op->slot.job_id, id);
  snprintf(op->slot.state, sizeof op->slot.state, "claimed");
  /* the new id goes into the claim before the job exists: a leader after this one sees it */
  write_slot(op, on_resume_written);
}

/* The job of the previous slot, when it has not finished. */
static mu_job *running_previous(mu_schedules *ss, const mu_schedule *sc) {
  const mu_slot *prev = latest_created(sc);
  mu_job *job = prev ? mu_sched_find(ss->d->sched, prev->job_id) : NULL;
  return job != NULL && !mu_job_finished(job) ? job : NULL;
}

/* One step of one schedule that is not busy: a slot waiting for its job, or the next due
 * slot (claimed as its overlap decision says). */
static void step(mu_schedules *ss, mu_schedule *sc, int64_t now) {
  int queued = 0;
  for (size_t i = 0; i < sc->n_slots; i++) {
    const mu_slot *s = &sc->slots[i];
    /* a claim older than the schedule is a deleted namesake's (its claim landed after the
     * delete): never fired */
    if (s->claimed_at_ms < sc->rec->created_at_ms) continue;
    if (strcmp(s->state, "claimed") == 0) { /* paused or not: a claim always gets its job */
      resume_slot(ss, sc, s);
      return;
    }
    queued |= strcmp(s->state, "queued") == 0;
  }
  if (sc->rec->spec->paused) return;
  if (queued && running_previous(ss, sc) == NULL) {
    for (size_t i = 0; i < sc->n_slots; i++)
      if (strcmp(sc->slots[i].state, "queued") == 0 && sc->slots[i].claimed_at_ms >= sc->rec->created_at_ms) {
        resume_slot(ss, sc, &sc->slots[i]);
        return;
      }
  }
  if (sc->next_due_ms == -2) mu_schedule_next(&sc->rules, sc->name, sc->cursor_s, &sc->next_due_ms);
  if (sc->next_due_ms < 0 || sc->next_due_ms > now) return;
  int64_t fire_s, cursor;
  size_t skipped = 0;
  size_t n = mu_schedule_due(&sc->rules, sc->name, sc->cursor_s, now, ss->on_time_ms, &fire_s, 1, &cursor, &skipped);
  if (skipped > 0)
    mu_info(LOG, "%s: %zu missed slots skipped (catch-up %s)", sc->name, skipped, mu_catch_up_name(sc->rules.catch_up));
  ss->missed += skipped;
  sc->next_due_ms = -2;
  if (n == 0) {
    sc->cursor_s = cursor;
    return;
  }
  fire_op *op = op_new(ss, sc, fire_s, 0);
  if (op == NULL) return;
  op->new_cursor = cursor;
  op->holds_busy = 1;
  mu_job *prev = running_previous(ss, sc);
  op->action = mu_schedule_overlap(sc->rules.overlap, prev != NULL, queued);
  if (prev != NULL) snprintf(op->prev_job, sizeof op->prev_job, "%s", prev->id);
  switch (op->action) {
    case MU_SLOT_SKIP:
      snprintf(op->slot.state, sizeof op->slot.state, "skipped");
      char why[200];
      snprintf(why, sizeof why,
               queued ? "a slot is queued already (overlap queue keeps one)"
                      : "previous job %s still running (overlap skip)",
               prev ? prev->id : "");
      set_owned(&op->slot.reason, why);
      break;
    case MU_SLOT_QUEUE: snprintf(op->slot.state, sizeof op->slot.state, "queued"); break;
    default: {
      char id[MU_SCHED_ID_SIZE];
      mu_sched_new_id(ss->d->sched, id);
      set_owned(&op->slot.job_id, id);
      snprintf(op->slot.state, sizeof op->slot.state, "claimed");
    }
  }
  sc->busy++;
  claim(op, sc);
}

void mu_schedules_trigger(mu_schedules *ss, mu_schedule *sc, mu_schedules_fired_cb done, void *ud) {
  fire_op *op = op_new(ss, sc, mu_now_ms() / 1000, 1);
  if (op == NULL) {
    mu_err e = {0};
    mu_err_set(&e, MU_ENOMEM, "out of memory");
    done(ud, NULL, 0, &e);
    return;
  }
  char id[MU_SCHED_ID_SIZE];
  mu_sched_new_id(ss->d->sched, id);
  set_owned(&op->slot.job_id, id);
  snprintf(op->slot.state, sizeof op->slot.state, "claimed");
  op->action = MU_SLOT_FIRE;
  op->done = done;
  op->done_ud = ud;
  op->holds_busy = 1; /* the timer leaves the schedule alone meanwhile */
  sc->busy++;
  claim(op, sc);
}

/* Drops the oldest finished slot records past keep_slots (claimed and queued ones stay). */
static void trim_slots(mu_schedules *ss, mu_schedule *sc) {
  while (sc->n_slots > ss->keep_slots) {
    size_t i = 0;
    while (i < sc->n_slots && (strcmp(sc->slots[i].state, "claimed") == 0 || strcmp(sc->slots[i].state, "queued") == 0))
      i++;
    if (i == sc->n_slots) return;
    char rel[400];
    snprintf(rel, sizeof rel, "schedules/%s/slots/%s", sc->name, sc->slots[i].suffix);
    if (!single_mode(ss)) {
      char key[700];
      mu_err err = {0};
      rel_to_key(ss, rel, key, sizeof key);
      mu_store_batch *b = mu_store_batch_new(ss->d->cluster->store);
      if (b == NULL) return;
      if (mu_store_batch_delete(b, key, false, &err) != 0) {
        mu_store_batch_free(b);
        return;
      }
      if (mu_store_batch_commit(b, NULL, NULL, &err) != 0) return; /* again next time */
    }
    drop_slot(sc, sc->slots[i].suffix);
  }
}

static void on_timer(uv_timer_t *t) {
  mu_schedules *ss = t->data;
  if (!ss->running || ss->d->stopping) return;
  int64_t now = mu_now_ms(), wake = now + MAX_WAIT_MS;
  for (size_t i = 0; i < ss->n; i++) {
    mu_schedule *sc = ss->items[i];
    if (sc->busy || now < sc->retry_at_ms) continue;
    trim_slots(ss, sc);
    step(ss, sc, now);
    if (sc->busy) continue;
    if (sc->next_due_ms == -2) mu_schedule_next(&sc->rules, sc->name, sc->cursor_s, &sc->next_due_ms);
    if (!sc->rec->spec->paused && sc->next_due_ms >= 0 && sc->next_due_ms < wake) wake = sc->next_due_ms;
  }
  if (!ss->running) return; /* a step may have ended the role (an exit hook, a fence) */
  uv_timer_start(&ss->timer, on_timer, (uint64_t)(wake > now ? wake - now : 0), 0);
}

static void kick(mu_schedules *ss) {
  if (!ss->running || ss->d->stopping || !ss->timer_ready) return;
  uv_timer_start(&ss->timer, on_timer, 0, 0);
}

/* --- lifecycle and events --- */

int mu_schedules_init(mu_daemon *d, size_t keep_slots, size_t max_schedules, mu_err *err) {
  mu_schedules *ss = calloc(1, sizeof *ss);
  if (ss == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  ss->d = d;
  ss->keep_slots = keep_slots ? keep_slots : MU_SCHEDULES_DEFAULT_KEEP_SLOTS;
  ss->max_schedules = max_schedules ? max_schedules : MU_SCHEDULES_DEFAULT_MAX;
  ss->on_time_ms = MU_SCHEDULES_ON_TIME_MS;
  const char *hook = getenv(MU_SCHEDULES_TEST_EXIT_ENV);
  if (hook != NULL) snprintf(ss->exit_after_claim, sizeof ss->exit_after_claim, "%s", hook);
  d->schedules = ss;
  return 0;
}

static void reset(mu_schedules *ss) {
  for (size_t i = 0; i < ss->n; i++) schedule_free(ss->items[i]);
  ss->n = 0;
}

void mu_schedules_close(mu_daemon *d) {
  mu_schedules *ss = d->schedules;
  if (ss == NULL || !ss->timer_ready) return;
  ss->running = 0;
  ss->gen++;
  uv_timer_stop(&ss->timer);
  uv_close((uv_handle_t *)&ss->timer, NULL);
  ss->timer_ready = 0;
}

void mu_schedules_free(mu_daemon *d) {
  mu_schedules *ss = d->schedules;
  if (ss == NULL) return;
  reset(ss);
  free(ss->items);
  free(ss);
  d->schedules = NULL;
}

void mu_schedules_start(mu_daemon *d) {
  mu_schedules *ss = d->schedules;
  if (!ss->timer_ready) { /* the first time this member fires; closed by mu_schedules_close */
    if (d->stopping) return;
    uv_timer_init(d->loop, &ss->timer);
    ss->timer.data = ss;
    ss->timer_ready = 1;
  }
  ss->gen++;
  ss->running = 1;
  for (size_t i = 0; i < ss->n; i++) {
    recompute_cursor(ss->items[i]);
    ss->items[i]->busy = 0;
    ss->items[i]->retry_at_ms = 0;
  }
  mu_info(LOG, "%zu schedules loaded; firing", ss->n);
  kick(ss);
}

void mu_schedules_on_deposed(mu_daemon *d) {
  mu_schedules *ss = d->schedules;
  ss->running = 0;
  ss->gen++;
  if (ss->timer_ready) uv_timer_stop(&ss->timer);
}

void mu_schedules_on_snapshot_begin(mu_daemon *d) {
  d->schedules->gen++;
  reset(d->schedules);
}

void mu_schedules_on_record(mu_daemon *d, const char *rel, const char *value, size_t len) {
  mu_schedules *ss = d->schedules;
  char name[MU_SCHEDULE_NAME_MAX + 2], suffix[MU_SLOT_SUFFIX_SIZE];
  int n = 0;
  mu_err err = {0};
  if (strncmp(rel, "schedules/", 10) != 0) return;
  if (sscanf(rel, "schedules/%65[^/]%n", name, &n) == 1 && rel[n] == '\0') {
    if (value == NULL) {
      mu_schedules_remove(ss, name);
      return;
    }
    ProtobufCMessage *m = NULL;
    if (mu_record_decode(&muster__v1__schedule_record__descriptor, value, len, &m, &err) != 0 ||
        mu_schedules_put_record(ss, (Muster__V1__ScheduleRecord *)m, &err) != 0)
      mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
    return;
  }
  if (sscanf(rel, "schedules/%65[^/]/slots/%31[^/]%n", name, suffix, &n) != 2 || rel[n] != '\0') return;
  mu_schedule *sc = mu_schedules_find(ss, name);
  if (sc == NULL) return;
  if (value == NULL) {
    drop_slot(sc, suffix);
    return;
  }
  mu_slot s;
  Muster__V1__SlotRecord *rec = NULL;
  if (slot_decode(suffix, value, len, &s, &rec, &err) != 0) {
    mu_warn(LOG, "%s%s: %s; skipped", d->cfg.etcd_prefix, rel, err.msg);
    return;
  }
  store_slot(sc, &s);
  if (!s.manual && s.slot_s > sc->cursor_s) sc->cursor_s = s.slot_s;
  protobuf_c_message_free_unpacked(&rec->base, NULL);
}

void mu_schedules_metrics(const mu_daemon *d, mu_prom *p) {
  const mu_schedules *ss = d->schedules;
  mu_prom_add(p, "muster_schedules", "gauge", "Schedules held (max_schedules bounds them).", "", (double)ss->n);
  mu_prom_add(p, "muster_schedule_slots_fired_total", "counter",
              "Schedule slots whose job was created and stored by this member.", "", (double)ss->fired);
  mu_prom_add(p, "muster_schedule_slots_skipped_total", "counter",
              "Slots recorded skipped because the previous job still ran (overlap skip/queue).", "",
              (double)ss->skipped_overlap);
  mu_prom_add(p, "muster_schedule_slots_missed_total", "counter",
              "Missed slots skipped by the catch-up rule (none, latest, the window).", "", (double)ss->missed);
  mu_prom_add(p, "muster_schedule_slots_failed_total", "counter",
              "Slots whose job was refused when they came (recorded failed with the reason).", "", (double)ss->failed);
  mu_prom_add(p, "muster_schedule_claims_taken_total", "counter",
              "Slot claims that found the slot claimed already (never fired twice).", "", (double)ss->claim_conflicts);
  mu_prom_add(p, "muster_schedule_last_fire_delay_seconds", "gauge",
              "Slot time (plus jitter) to job stored in etcd, of the last slot fired.", "",
              (double)ss->last_delay_ms / 1000.0);
}

/* --- views --- */

static void slot_view(mu_schedules *ss, const mu_slot *s, Muster__V1__ScheduleSlot *v) {
  muster__v1__schedule_slot__init(v);
  v->slot_s = s->slot_s;
  v->manual = s->manual != 0;
  v->state = (char *)s->state;
  v->job_id = s->job_id ? s->job_id : "";
  v->reason = s->reason ? s->reason : "";
  v->claimed_at_ms = s->claimed_at_ms;
  v->created_at_ms = s->created_at_ms;
  mu_job *job = s->job_id ? mu_sched_find(ss->d->sched, s->job_id) : NULL;
  if (job != NULL && job->ready)
    v->job_state = (char *)protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, job->state)->name;
}

Muster__V1__Schedule *mu_schedules_view(mu_schedules *ss, const mu_schedule *sc, int recent) {
  Muster__V1__Schedule *v = calloc(1, sizeof *v);
  int64_t *next = calloc(3, sizeof *next);
  /* one block: the pointers, then the slots they point at (freed with v->recent) */
  Muster__V1__ScheduleSlot **ptrs =
      calloc(sc->n_slots + 1, sizeof(Muster__V1__ScheduleSlot *) + sizeof(Muster__V1__ScheduleSlot));
  Muster__V1__ScheduleSlot *slots = ptrs ? (Muster__V1__ScheduleSlot *)(ptrs + sc->n_slots + 1) : NULL;
  char *local = malloc(48);
  if (v == NULL || next == NULL || ptrs == NULL || local == NULL) {
    free(v), free(next), free(ptrs), free(local);
    return NULL;
  }
  muster__v1__schedule__init(v);
  v->spec = sc->rec->spec;
  v->created_at_ms = sc->rec->created_at_ms;
  v->created_by = sc->rec->created_by;
  v->updated_at_ms = sc->rec->updated_at_ms;
  int64_t after = mu_now_ms() / 1000;
  if (after < sc->cursor_s) after = sc->cursor_s;
  for (int i = 0; i < 3 && !sc->rec->spec->paused; i++) {
    int64_t due, t = mu_schedule_next(&sc->rules, sc->name, after, &due);
    if (t < 0) break;
    next[v->n_next_fire_s++] = t;
    after = t;
  }
  v->next_fire_s = next;
  local[0] = '\0';
  if (v->n_next_fire_s > 0) {
    int32_t off = mu_tz_offset(sc->rules.tz, next[0]);
    time_t t = (time_t)(next[0] + off);
    struct tm tm;
    gmtime_r(&t, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(local, 48, "%s%c%02d:%02d", stamp, off < 0 ? '-' : '+', abs(off) / 3600, abs(off) / 60 % 60);
  }
  v->next_fire_local = local;
  for (size_t i = 0; i < sc->n_slots; i++) { /* newest first */
    slot_view(ss, &sc->slots[sc->n_slots - 1 - i], &slots[i]);
    ptrs[i] = &slots[i];
  }
  if (sc->n_slots > 0) v->last = ptrs[0];
  v->recent = ptrs;
  v->n_recent = recent ? sc->n_slots : 0;
  return v;
}

void mu_schedules_view_free(Muster__V1__Schedule *v) {
  if (v == NULL) return;
  free(v->next_fire_s);
  free(v->recent); /* the slots too */
  free(v->next_fire_local);
  free(v);
}

int mu_schedules_latest_job(const mu_daemon *d, const char *name, char *job_id, size_t size) {
  const mu_schedule *sc = mu_schedules_find(d->schedules, name);
  if (sc == NULL) return -1;
  int64_t best_at = -1;
  const mu_slot *best = NULL;
  for (size_t i = 0; i < sc->n_slots; i++) { /* by slot time; a manual one may be newer */
    const mu_slot *sl = &sc->slots[i];
    int64_t at = sl->created_at_ms ? sl->created_at_ms : sl->claimed_at_ms;
    if (sl->job_id != NULL && strcmp(sl->state, "created") == 0 && at >= best_at) {
      best = sl;
      best_at = at;
    }
  }
  if (best == NULL) return 0;
  snprintf(job_id, size, "%s", best->job_id);
  return 1;
}
