/* The certificate revocation list of --tls-crl: a client certificate whose serial is on it is
 * refused by the gate (UNAUTHENTICATED, naming the serial). The CRL is verified against
 * --tls-ca when loaded, and a uv_fs_poll watches the file: a new CRL written by `muster pki
 * crl` applies to the next call without a restart. A CRL that fails to load keeps the last
 * good one (logged); a missing CRL at start is an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controlplane/authz.h"
#include "controlplane/daemon.h"
#include "lib/base/log.h"
#include "lib/pki/peer.h"

struct mu_crl_state {
  mu_pki_crl_set *set;
  uv_fs_poll_t poll;
  int polling;
};

static int load(mu_daemon *d, mu_err *err) {
  mu_pki_crl_set *set = NULL;
  int rc = mu_pki_crl_set_load(d->cfg.tls_crl, d->cfg.tls_ca, &set, err);
  if (rc != 0) return rc;
  mu_pki_crl_set_free(d->crl->set);
  d->crl->set = set;
  mu_info("authz", "CRL %s: %zu revoked certificate%s", d->cfg.tls_crl, set->n, set->n == 1 ? "" : "s");
  return 0;
}

static void on_crl_changed(uv_fs_poll_t *h, int status, const uv_stat_t *prev, const uv_stat_t *curr) {
  mu_daemon *d = h->data;
  (void)prev;
  (void)curr;
  if (status < 0) return; /* gone for now: keep the last one */
  mu_err err = {0};
  if (load(d, &err) != 0) mu_warn("authz", "CRL %s not reloaded, keeping the last: %s", d->cfg.tls_crl, err.msg);
}

int mu_authz_reload_crl(mu_daemon *d, mu_err *err) {
  if (d->cfg.tls_crl[0] == '\0' || d->cfg.insecure) return 0;
  if (d->crl == NULL) {
    d->crl = calloc(1, sizeof *d->crl);
    if (d->crl == NULL) return mu_err_set(err, MU_ENOMEM, "out of memory");
  }
  int rc = load(d, err);
  if (rc != 0) {
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return mu_err_set(err, rc, "--tls-crl: %s", msg);
  }
  if (!d->crl->polling) {
    uv_fs_poll_init(d->loop, &d->crl->poll);
    d->crl->poll.data = d;
    uv_fs_poll_start(&d->crl->poll, on_crl_changed, d->cfg.tls_crl, 1000);
    d->crl->polling = 1;
  }
  return 0;
}

static void on_poll_closed(uv_handle_t *h) {
  struct mu_crl_state *s = h->data;
  mu_pki_crl_set_free(s->set);
  free(s);
}

void mu_authz_close(mu_daemon *d) {
  struct mu_crl_state *s = d->crl;
  d->crl = NULL;
  if (s == NULL) return;
  if (!s->polling) {
    mu_pki_crl_set_free(s->set);
    free(s);
    return;
  }
  uv_fs_poll_stop(&s->poll);
  s->poll.data = s;
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

int mu_authz_check_revoked(mu_daemon *d, const mu_rpc_peer *peer, char *msg, size_t size) {
  if (d->crl == NULL || d->crl->set == NULL || d->crl->set->n == 0 || peer->pem == NULL) return MU_RPC_OK;
  uint8_t serial[MU_PKI_SERIAL_MAX];
  size_t len = 0;
  mu_err err = {0};
  if (mu_pki_cert_serial_from_pem(peer->pem, serial, sizeof serial, &len, &err) != 0) {
    snprintf(msg, size, "client certificate unreadable: %s", err.msg);
    return MU_RPC_UNAUTHENTICATED;
  }
  if (!mu_pki_crl_set_is_revoked(d->crl->set, serial, len)) return MU_RPC_OK;
  char hex[2 * MU_PKI_SERIAL_MAX + 1];
  for (size_t i = 0; i < len; i++) snprintf(hex + 2 * i, 3, "%02X", serial[i]);
  snprintf(msg, size, "certificate %s (serial %s) is revoked (CRL %s)", peer->common_name[0] ? peer->common_name : "?",
           hex, d->cfg.tls_crl);
  return MU_RPC_UNAUTHENTICATED;
}
