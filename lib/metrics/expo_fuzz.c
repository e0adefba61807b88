/* Fuzzes the exposition text both ways: the first byte picks a mode. Even: the bytes go to
 * the checker (expo_check.h) as they are — it must answer, never crash. Odd: the bytes become
 * label values, help text and observed values of a registry's counter, gauge and histogram,
 * and what the registry renders must pass the checker (it aborts otherwise), and the number
 * of series stays within the bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/metrics/expo_check.h"
#include "lib/metrics/registry.h"

static const double buckets[] = {0.005, 0.1, 1, 10};

static void render_and_check(const uint8_t *data, size_t size) {
  char help[64] = {0};
  size_t h = size < sizeof help - 1 ? size : sizeof help - 1;
  memcpy(help, data, h);
  for (size_t i = 0; i < h; i++)
    if (help[i] == '\0') help[i] = ' ';
  mu_metrics *m = mu_metrics_new();
  if (m == NULL) return;
  mu_metric *c = NULL, *g = NULL, *hist = NULL;
  mu_err err = {0};
  mu_metric_desc dc = {
      .name = "fz_total", .help = help, .type = MU_METRIC_COUNTER, .labels = {"a", "b"}, .max_series = 8};
  mu_metric_desc dg = {.name = "fz_gauge", .help = "g", .type = MU_METRIC_GAUGE, .labels = {"a"}, .max_series = 8};
  mu_metric_desc dh = {.name = "fz_seconds",
                       .help = "h",
                       .type = MU_METRIC_HISTOGRAM,
                       .labels = {"a"},
                       .buckets = buckets,
                       .n_buckets = 4,
                       .max_series = 8};
  if (mu_metrics_add(m, &dc, &c, &err) != 0 || mu_metrics_add(m, &dg, &g, &err) != 0 ||
      mu_metrics_add(m, &dh, &hist, &err) != 0)
    abort();
  /* values: NUL-separated chunks of the input, taken two at a time */
  char vals[2][200];
  size_t vi = 0, vl = 0;
  for (size_t i = 0; i <= size; i++) {
    if (i == size || data[i] == '\0' || vl + 1 >= sizeof vals[0]) {
      vals[vi][vl] = '\0';
      vl = 0;
      if (++vi == 2) {
        const char *ab[] = {vals[0], vals[1]};
        double v = (double)(vals[1][0] ? (unsigned char)vals[1][0] : 0) / 7.0;
        mu_metric_add(c, ab, v);
        mu_metric_set(g, ab, -v);
        mu_metric_observe(hist, ab, v);
        vi = 0;
      }
      continue;
    }
    vals[vi][vl++] = (char)data[i];
  }
  if (mu_metric_series(c) > 8 || mu_metric_series(g) > 8 || mu_metric_series(hist) > 8) abort();
  mu_prom p = {0};
  mu_metrics_render(m, &p);
  if (p.buf == NULL || mu_prom_check(p.buf, p.len, NULL, &err) != 0) abort();
  mu_prom_free(&p);
  mu_metrics_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    render_and_check(data + 1, size - 1);
  } else {
    mu_err err = {0};
    mu_prom_check((const char *)data + 1, size - 1, NULL, &err);
  }
  return 0;
}
