/* Resource amounts for placement (no daemon): what a job's host reserves on an agent
 * (resources.requests of its tasks), what an agent declares it has (Hello capacity, cpu_count,
 * memory_bytes, labels "devices.<name>=N"), whether a request fits beside what is allocated,
 * how good a fit is (spread or binpack), and the sentence that says why nothing fits. */
#ifndef MU_CP_RESOURCES_H
#define MU_CP_RESOURCES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/base/err.h"
#include "muster/v1/agent.pb-c.h"
#include "muster/v1/job.pb-c.h"

#define MU_RES_MAX_DEVICES 8 /* device kinds per request or agent; more is refused */
#define MU_RES_DEVICE_NAME 32
#define MU_RES_UNLIMITED INT64_MAX /* an agent that declares nothing of a kind */

typedef struct mu_res {
  int64_t cpu; /* millicores */
  int64_t mem; /* bytes */
  int64_t slots;
  size_t n_dev;
  struct {
    char name[MU_RES_DEVICE_NAME];
    int64_t n;
  } dev[MU_RES_MAX_DEVICES];
} mu_res;

typedef enum { MU_RES_SPREAD = 0, MU_RES_BINPACK = 1 } mu_res_strategy;

/* What one host of spec reserves while it runs: per kind the largest request of its tasks
 * (they run one after another), slots at least 1. MU_EINVAL names the field. */
int mu_res_request(const Muster__V1__JobSpec *spec, mu_res *ret, mu_err *err);
/* What an agent with this Hello may be given (NULL: nothing known, slots 1, the rest
 * unlimited). Undeclared cpu/memory are unlimited; undeclared devices are 0. */
void mu_res_capacity(const Muster__V1__Hello *hello, mu_res *ret);
/* The placement strategy a target names ("" = spread); -1 for anything else. */
int mu_res_strategy_parse(const char *text);

int64_t mu_res_device(const mu_res *r, const char *name);
/* a += sign * b (devices by name; a device of b missing from a is added when there is room). */
void mu_res_add(mu_res *a, const mu_res *b, int sign);
/* 1 when need fits in cap beside alloc. Otherwise 0 and, when short != NULL, the first kind
 * that does not fit is written there ("cpu", "memory", "slots", "devices.gpu"). */
int mu_res_fits(const mu_res *cap, const mu_res *alloc, const mu_res *need, char *short_of, size_t size);
/* The free amount of kind (as named by mu_res_fits) on an agent, MU_RES_UNLIMITED when
 * undeclared. */
int64_t mu_res_free(const mu_res *cap, const mu_res *alloc, const char *kind);
/* How good placing need there is: higher is better. spread: the smallest fraction of a
 * declared kind left free afterwards; binpack: its opposite (the fullest agent first). */
double mu_res_score(const mu_res *cap, const mu_res *alloc, const mu_res *need, mu_res_strategy strategy);
/* "4 CPU" / "512 MiB memory" / "2 slots" / "1 devices.gpu": an amount of kind, for messages. */
void mu_res_amount(const char *kind, int64_t amount, char *buf, size_t size);

#endif
