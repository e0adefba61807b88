/* muster.v1.Audit/ListAudit: records matching the filters, newest first. With etcd any member
 * answers by reading <prefix>audit/ backwards in pages (keys sort by time; all pages at one
 * revision), from the newest down to `since`, until `limit` records matched or the scan bound
 * (audit_max_records + MU_AUDIT_SCAN_EXTRA keys, at most MU_AUDIT_SCAN_MAX) is reached; the
 * leader adds what it has not written yet. Nothing of the 100k records is held in memory
 * between calls, and the loop never waits. With --no-etcd the ring answers at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/audit_int.h"
#include "controlplane/cluster.h"
#include "controlplane/daemon.h"
#include "lib/base/clock.h"
#include "lib/base/log.h"
#include "lib/rpc/pb.h"
#include "muster/v1/audit.pb-c.h"

#define MU_AUDIT_PAGE 500         /* keys per etcd read */
#define MU_AUDIT_SCAN_EXTRA 10000 /* keys read past audit_max_records (pruning lags) */
#define MU_AUDIT_SCAN_MAX 1000000 /* keys one call reads at most, whatever the bound */
#define MU_AUDIT_MAX_QUERIES 16   /* ListAudit calls reading etcd at once */
#define MU_AUDIT_DEFAULT_LIMIT 100
#define MU_AUDIT_MAX_LIMIT 10000

typedef struct query {
  mu_audit_log *al;  /* a reference: the log outlives the query */
  mu_rpc_call *call; /* NULL once the caller went away */
  int got_request;
  int reading; /* an etcd read is in flight */
  char who[MU_AUDIT_NAME_MAX], action[MU_AUDIT_SHORT_MAX];
  mu_audit_filter f;
  uint32_t limit;
  mu_audit_rec **out; /* newest first; limit + 1 slots (one more says "truncated") */
  size_t n_out;
  int truncated;
  size_t scanned, scan_max;
  char *start, *end; /* the keys left to read: [start, end), end exclusive */
  size_t end_len;
  int64_t revision;
} query;

static void query_free(query *q) {
  for (size_t i = 0; i < q->n_out; i++) free(q->out[i]);
  free(q->out);
  free(q->start);
  free(q->end);
  mu_audit_unref(q->al);
  free(q);
}

static int newer_first(const void *a, const void *b) {
  return strcmp((*(mu_audit_rec *const *)b)->id, (*(mu_audit_rec *const *)a)->id);
}

/* Sends q->out (sorted, cut at limit) and finishes the call. */
static void answer(query *q, const char *source) {
  qsort(q->out, q->n_out, sizeof *q->out, newer_first);
  size_t n = 0;
  for (size_t i = 0; i < q->n_out; i++) /* a record written while we read may come twice */
    if (n == 0 || strcmp(q->out[n - 1]->id, q->out[i]->id) != 0) q->out[n++] = q->out[i];
    else free(q->out[i]);
  q->n_out = n;
  if (n > q->limit) q->truncated = 1;
  n = n > q->limit ? q->limit : n;
  Muster__V1__ListAuditResponse resp = MUSTER__V1__LIST_AUDIT_RESPONSE__INIT;
  Muster__V1__AuditRecord *recs = calloc(n + 1, sizeof *recs);
  Muster__V1__AuditRecord **ptrs = calloc(n + 1, sizeof *ptrs);
  Muster__V1__AuditCaller *callers = calloc(n + 1, sizeof *callers);
  if (recs == NULL || ptrs == NULL || callers == NULL) {
    mu_pb_fail(q->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory listing %zu audit records", n);
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    const mu_audit_rec *r = q->out[i];
    Muster__V1__AuditCaller *c = &callers[i];
    Muster__V1__AuditRecord *pr = &recs[i];
    muster__v1__audit_caller__init(c);
    muster__v1__audit_record__init(pr);
    c->kind = (char *)r->caller_kind;
    c->name = (char *)r->caller_name;
    c->role = (char *)r->caller_role;
    c->token_id = (char *)r->token_id;
    c->address = (char *)r->address;
    pr->id = (char *)r->id;
    pr->time_ms = r->time_ms;
    pr->member_id = (char *)r->member;
    pr->caller = c;
    pr->action = (char *)r->action;
    pr->target = (char *)r->target;
    pr->params = (char *)r->params;
    pr->outcome = (char *)r->outcome;
    ptrs[i] = pr;
  }
  resp.n_records = n;
  resp.records = ptrs;
  resp.truncated = q->truncated;
  resp.source = (char *)source;
  mu_pb_reply(q->call, &resp.base);
out:
  free(recs);
  free(ptrs);
  free(callers);
}

/* Keeps a copy of r when it matches; 1 once limit + 1 matched (no need to read on). */
static int collect(query *q, const mu_audit_rec *r, int copy) {
  if (!mu_audit_rec_matches(r, &q->f) || q->n_out > q->limit) return q->n_out > q->limit;
  mu_audit_rec *c = (mu_audit_rec *)r;
  if (copy) {
    c = mu_audit_rec_pack(r);
    if (c == NULL) return 0;
  }
  q->out[q->n_out++] = c;
  return q->n_out > q->limit;
}

static void add_pending(query *q) {
  mu_audit_rec *const *recs;
  size_t n;
  mu_audit_pending(q->al->d, &recs, &n);
  for (size_t i = n; i-- > 0;) /* newest first; they are newer than anything stored */
    if (collect(q, recs[i], 1)) break;
}

/* --- etcd --- */

static void read_page(query *q);

static void on_page(void *ud, const mu_etcd_result *res, const mu_err *err) {
  query *q = ud;
  q->reading = 0;
  q->al->queries_reading--;
  if (q->call == NULL) {
    query_free(q);
    return;
  }
  if (err != NULL) {
    mu_pb_fail(q->call, MU_RPC_UNAVAILABLE, "reading audit records from etcd: %s", err->msg);
    return;
  }
  if (q->revision == 0) q->revision = res->revision;
  int full = 0;
  for (size_t i = 0; i < res->n_kvs && !full; i++) {
    mu_audit_rec *r = NULL;
    mu_err e = {0};
    if (mu_audit_rec_from_json(res->kvs[i].value, res->kvs[i].value_len, &r, &e) != 0) {
      mu_warn("audit", "%s: %s; skipped", res->kvs[i].key, e.msg);
      continue;
    }
    full = collect(q, r, 0);
    if (q->n_out == 0 || q->out[q->n_out - 1] != r) free(r);
  }
  q->scanned += res->n_kvs;
  if (!full && res->more && res->n_kvs > 0 && q->scanned >= q->scan_max) {
    q->truncated = 1;
    mu_warn("audit", "ListAudit stopped after reading %zu records", q->scanned);
  } else if (!full && res->more && res->n_kvs > 0) {
    const mu_etcd_kv *last = &res->kvs[res->n_kvs - 1]; /* the oldest read: excluded next */
    char *end = malloc(last->key_len + 1);
    if (end == NULL) {
      mu_pb_fail(q->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory reading audit records");
      return;
    }
    memcpy(end, last->key, last->key_len + 1);
    free(q->end);
    q->end = end;
    q->end_len = last->key_len;
    read_page(q);
    return;
  }
  answer(q, "etcd");
}

static void read_page(query *q) {
  mu_daemon *d = q->al->d;
  mu_etcd_range_req req = {.key = q->start,
                           .range_end = q->end,
                           .range_end_len = q->end_len,
                           .limit = MU_AUDIT_PAGE,
                           .revision = q->revision,
                           .descend = true};
  mu_err err = {0};
  if (d->cluster->etcd == NULL || mu_etcd_range(d->cluster->etcd, &req, on_page, q, &err) != 0) {
    mu_pb_fail(q->call, MU_RPC_UNAVAILABLE, "reading audit records from etcd: %s",
               err.msg[0] ? err.msg : "not connected");
    return;
  }
  q->reading = 1;
  q->al->queries_reading++;
}

/* --- the call --- */

/* Fills q's filter from req; INVALID_ARGUMENT naming the field otherwise. */
static int parse_request(query *q, const Muster__V1__ListAuditRequest *req, char *msg, size_t size) {
  if (strlen(req->who) >= sizeof q->who || strlen(req->action) >= sizeof q->action) {
    snprintf(msg, size, "%s: too long (at most %zu bytes)", strlen(req->who) >= sizeof q->who ? "who" : "action",
             (strlen(req->who) >= sizeof q->who ? sizeof q->who : sizeof q->action) - 1);
    return MU_RPC_INVALID_ARGUMENT;
  }
  if (req->limit > MU_AUDIT_MAX_LIMIT) {
    snprintf(msg, size, "limit: at most %d, got %u", MU_AUDIT_MAX_LIMIT, req->limit);
    return MU_RPC_INVALID_ARGUMENT;
  }
  if (req->since_ms < 0) {
    snprintf(msg, size, "since_ms: must not be negative, got %lld", (long long)req->since_ms);
    return MU_RPC_INVALID_ARGUMENT;
  }
  int64_t since = req->since_ms;
  if (req->since[0] != '\0') {
    int64_t back = 0;
    mu_err err = {0};
    if (mu_duration_parse(req->since, &back, &err) != 0 || back < 0) {
      snprintf(msg, size, "since: %s", err.msg[0] ? err.msg : "must not be negative");
      return MU_RPC_INVALID_ARGUMENT;
    }
    int64_t from = mu_now_ms() - back;
    if (from > since) since = from;
  }
  snprintf(q->who, sizeof q->who, "%s", req->who);
  snprintf(q->action, sizeof q->action, "%s", req->action);
  q->f = (mu_audit_filter){.since_ms = since, .who = q->who, .action = q->action};
  q->limit = req->limit ? req->limit : MU_AUDIT_DEFAULT_LIMIT;
  return MU_RPC_OK;
}

static void start(query *q, const Muster__V1__ListAuditRequest *req) {
  mu_daemon *d = q->al->d;
  char msg[300];
  int code = parse_request(q, req, msg, sizeof msg);
  if (code != MU_RPC_OK) {
    mu_pb_fail(q->call, code, "%s", msg);
    return;
  }
  q->out = calloc(q->limit + 1, sizeof *q->out);
  if (q->out == NULL) {
    mu_pb_fail(q->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (d->cluster->role == MU_ROLE_SINGLE) {
    mu_audit_ring *ring = &q->al->ring;
    q->al->pruned += mu_audit_ring_prune(ring, mu_now_ms());
    const mu_audit_rec *r;
    for (size_t i = 0; (r = mu_audit_ring_get(ring, i)) != NULL; i++) {
      if (r->time_ms < q->f.since_ms) break;
      if (collect(q, r, 1)) break;
    }
    answer(q, "memory");
    return;
  }
  if (q->al->queries_reading >= MU_AUDIT_MAX_QUERIES) {
    mu_pb_fail(q->call, MU_RPC_RESOURCE_EXHAUSTED, "%d ListAudit calls are reading etcd already; try again shortly",
               MU_AUDIT_MAX_QUERIES);
    return;
  }
  add_pending(q);
  char since[20] = "";
  if (q->f.since_ms > 0) snprintf(since, sizeof since, "%013lld", (long long)q->f.since_ms);
  size_t plen = strlen(d->cfg.etcd_prefix) + strlen(MU_AUDIT_REL);
  q->start = malloc(plen + sizeof since);
  q->end = malloc(plen + 1);
  if (q->start == NULL || q->end == NULL) {
    mu_pb_fail(q->call, MU_RPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  snprintf(q->start, plen + sizeof since, "%s%s%s", d->cfg.etcd_prefix, MU_AUDIT_REL, since);
  snprintf(q->end, plen + 1, "%s%s", d->cfg.etcd_prefix, MU_AUDIT_REL);
  q->end[plen - 1] = '/' + 1; /* "<prefix>audit0": just past every key under audit/ */
  q->end_len = plen;
  q->scan_max = (size_t)d->cfg.audit_max_records + MU_AUDIT_SCAN_EXTRA;
  if (q->scan_max > MU_AUDIT_SCAN_MAX) q->scan_max = MU_AUDIT_SCAN_MAX;
  read_page(q);
}

static int on_message(mu_rpc_call *call, const uint8_t *data, size_t len, void *ud) {
  query *q = ud;
  Muster__V1__ListAuditRequest *req = muster__v1__list_audit_request__unpack(NULL, len, data);
  if (req == NULL) {
    mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "malformed ListAuditRequest (%zu bytes)", len);
    return 1;
  }
  q->got_request = 1;
  start(q, req);
  protobuf_c_message_free_unpacked(&req->base, NULL);
  return 1;
}

static void on_read_end(mu_rpc_call *call, void *ud) {
  query *q = ud;
  if (!q->got_request) mu_pb_fail(call, MU_RPC_INVALID_ARGUMENT, "no request message sent");
}

static void on_done(mu_rpc_call *call, const mu_rpc_status *st, void *ud) {
  query *q = ud;
  (void)call;
  (void)st;
  q->call = NULL;
  if (!q->reading) query_free(q); /* else on_page frees it */
}

static void on_list(mu_rpc_call *call, const mu_rpc_metadata *md, void *ud) {
  mu_daemon *d = ud;
  (void)md;
  query *q = d->audit_log ? calloc(1, sizeof *q) : NULL;
  if (q == NULL) {
    mu_rpc_call_finish(call, MU_RPC_UNAVAILABLE, d->audit_log ? "out of memory" : "the control plane is stopping",
                       NULL);
    return;
  }
  q->al = d->audit_log;
  q->al->refs++;
  q->call = call;
  mu_rpc_call_handlers h = {.on_message = on_message, .on_read_end = on_read_end, .on_done = on_done};
  mu_rpc_call_start(call, &h, q);
}

int mu_audit_register(mu_daemon *d, mu_err *err) {
  return mu_rpc_server_add_method(d->server, "/muster.v1.Audit/ListAudit", on_list, d, err);
}
