/* A small metrics library for the daemons: counters, gauges and histograms with fixed buckets,
 * each a family of series keyed by a fixed list of label names, rendered in Prometheus' text
 * exposition format (0.0.4). Label sets are bounded: a family holds at most max_series
 * series; an update for a new label set past that is dropped and counted in
 * muster_metrics_series_dropped_total{metric="<family>"}, which every registry renders.
 * Not thread-safe: the loop thread owns a registry, updates it and renders a snapshot that
 * it publishes to the HTTP thread (httpd.h). Every update function accepts a NULL family and
 * does nothing, so a daemon without --metrics-listen holds NULL families at no cost. */
#ifndef MU_METRICS_REGISTRY_H
#define MU_METRICS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "lib/metrics/httpd.h"

#define MU_METRIC_MAX_LABELS 4      /* label names per family */
#define MU_METRIC_MAX_BUCKETS 24    /* histogram upper bounds (+Inf is implied) */
#define MU_METRIC_DEFAULT_SERIES 64 /* max_series when 0 is given */
#define MU_METRIC_MAX_VALUE 128     /* label value bytes kept (longer ones are cut) */

typedef struct mu_metrics mu_metrics;
typedef struct mu_metric mu_metric;

typedef enum { MU_METRIC_COUNTER = 1, MU_METRIC_GAUGE, MU_METRIC_HISTOGRAM } mu_metric_type;

/* A family's description; strings and buckets are copied. Names follow Prometheus: a metric
 * name [a-zA-Z_:][a-zA-Z0-9_:]*, a counter's ending in _total; label names
 * [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", and "le" not on a histogram. */
typedef struct mu_metric_desc {
  const char *name;
  const char *help;
  mu_metric_type type;
  const char *labels[MU_METRIC_MAX_LABELS + 1]; /* label names, NULL-terminated */
  const double *buckets;                        /* histogram: strictly ascending, finite */
  size_t n_buckets;
  size_t max_series; /* 0 → MU_METRIC_DEFAULT_SERIES */
} mu_metric_desc;

/* Task run times, 50 ms (a trivial command) to 4 h: the bucket bounds both daemons' task
 * duration histograms use, so their quantiles compare (`{MU_BUCKETS_TASK_SECONDS}`). */
#define MU_BUCKETS_TASK_SECONDS 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 14400

/* A new empty registry; NULL when out of memory. Free with mu_metrics_free. */
mu_metrics *mu_metrics_new(void);
void mu_metrics_free(mu_metrics *m);

/* Registers a family. *ret is owned by the registry (valid until mu_metrics_free). Errors:
 * MU_EINVAL naming the bad name, label or bucket list, or a name registered twice;
 * MU_ENOMEM. */
int mu_metrics_add(mu_metrics *m, const mu_metric_desc *desc, mu_metric **ret, mu_err *err);
/* The family registered as desc->name with desc's type, labels and buckets, or NULL (none,
 * or one of another shape). */
mu_metric *mu_metrics_find(const mu_metrics *m, const mu_metric_desc *desc);

/* Families registered together: where each one's handle goes, and its description. */
typedef struct mu_metric_def {
  mu_metric **ret;
  mu_metric_desc desc;
} mu_metric_def;
/* Registers defs[0..n) in order (mu_metrics_add); stops at the first error, whose code it
 * returns (the families registered before it stay in m). */
int mu_metrics_add_all(mu_metrics *m, const mu_metric_def *defs, size_t n, mu_err *err);

/* Updates the series of the label values given (one per label name, in order; NULL for a
 * family without labels; a NULL value is ""). Values are kept as printable ASCII: other
 * bytes become '_', and past MU_METRIC_MAX_VALUE bytes they are cut.
 * add: counters (v >= 0; a negative v is ignored) and gauges; set: gauges; observe:
 * histograms (NaN is ignored). The wrong kind of update for a family is ignored. */
void mu_metric_add(mu_metric *f, const char *const *values, double v);
void mu_metric_set(mu_metric *f, const char *const *values, double v);
void mu_metric_observe(mu_metric *f, const char *const *values, double v);
/* Forgets every series of a gauge (one recomputed from state at each snapshot). */
void mu_metric_clear(mu_metric *f);

/* The current value of a counter or gauge series (0 when absent), a histogram series' count
 * of observations; for tests and benches. */
double mu_metric_value(const mu_metric *f, const char *const *values);
/* Series the family holds now. */
size_t mu_metric_series(const mu_metric *f);

/* Appends every family (HELP, TYPE and its series), then the dropped-series counter. */
void mu_metrics_render(const mu_metrics *m, mu_prom *out);
/* The same with the dropped-series counter under another name, for a second registry rendered
 * into the same exposition (the agent's plugin metrics). */
void mu_metrics_render_as(const mu_metrics *m, const char *dropped_name, mu_prom *out);

/* printf into a mu_prom (bounded like mu_prom_add: past 4 MiB the text is not added). */
void mu_prom_printf(mu_prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
