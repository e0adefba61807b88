/* A wired daemon on a test loop with a real etcd store (daemon_testkit.h). */
#include "controlplane/daemon_testkit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "controlplane/persist.h"
#include "controlplane/presence.h"
#include "controlplane/scheduler.h"
#include "controlplane/wiring.h"

static void kick(mu_daemon *d) { mu_persist_kick(d); }

void mu_tk_daemon_start(mu_daemon *d, ha_env *e, ha_member *m, const char *prefix, mu_role role) {
  mu_err err = {0};
  memset(d, 0, sizeof *d);
  mu_server_config_init(&d->cfg);
  snprintf(d->cfg.etcd_prefix, sizeof d->cfg.etcd_prefix, "%s", prefix);
  d->loop = &e->loop;
  mu_registry_init(&d->registry, 100);
  if (mu_wiring_new(d, 0, &err) != 0) fail_msg("wiring: %s", err.msg);
  d->cluster->role = role;
  d->cluster->state_ready = 1;
  d->cluster->active = 1;
  d->cluster->gen = 1;
  d->cluster->etcd = m->c;
  d->cluster->leader = m->l;
  d->cluster->term = (uint64_t)m->term;
  if (mu_store_new(m->c, m->l, NULL, &d->cluster->store, &err) != 0) fail_msg("store_new: %s", err.msg);
  d->presence->granted = kick;
  mu_presence_init(d);
  mu_persist_init(d);
  mu_wiring_start_scheduler(d);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

void mu_tk_daemon_stop(mu_daemon *d, ha_env *e) {
  bool closed = false;
  d->stopping = 1;
  for (size_t i = 0; i < d->registry.n; i++) d->registry.agents[i]->session = NULL;
  mu_sched_close(d->sched);
  mu_persist_close(d);
  uv_close((uv_handle_t *)&d->presence->timer, NULL);
  mu_store_close(d->cluster->store, on_closed, &closed);
  mu_test_ha_run_until(e, &closed, 5000);
  mu_wiring_free(d);
  mu_registry_free(&d->registry);
  mu_server_config_free(&d->cfg);
}
