/* The curl multi <-> libuv bridge (http_multi.h). CURLMOPT_SOCKETFUNCTION opens or updates a
 * uv_poll per curl socket, CURLMOPT_TIMERFUNCTION arms one uv_timer, and both call
 * curl_multi_socket_action and then hand finished transfers to their owners. The registry of
 * multis per loop is the plugin's only shared state, guarded by a mutex for agents that run
 * more than one loop. */
#include "http_multi.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
  struct mu_http_multi *m;
  struct sock_ctx *prev, *next; /* the multi's open sockets */
} sock_ctx;

struct mu_http_multi {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  int refs;
  int active;       /* easy handles in the multi */
  int open_handles; /* uv handles not yet closed (timer + polls) */
  int dispatching;  /* depth of calls into curl / done callbacks */
  bool closing;
  sock_ctx *socks;     /* polls not yet closing */
  mu_http_multi *next; /* registry */
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static mu_http_multi *registry;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void on_handle_closed(uv_handle_t *h) {
  mu_http_multi *m;
  if (h->type == UV_POLL) {
    sock_ctx *sc = h->data;
    m = sc->m;
    free(sc);
  } else {
    m = h->data;
  }
  if (--m->open_handles == 0 && m->closing) free(m);
}

static void sock_close(mu_http_multi *m, sock_ctx *sc) {
  if (sc->prev != NULL) sc->prev->next = sc->next;
  else m->socks = sc->next;
  if (sc->next != NULL) sc->next->prev = sc->prev;
  uv_poll_stop(&sc->poll);
  uv_close((uv_handle_t *)&sc->poll, on_handle_closed);
}

static void destroy(mu_http_multi *m) {
  m->closing = true;
  pthread_mutex_lock(&registry_mu);
  for (mu_http_multi **pp = &registry; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == m) {
      *pp = m->next;
      break;
    }
  }
  pthread_mutex_unlock(&registry_mu);
  /* curl may report CURL_POLL_REMOVE for cached connections here: on_socket closes them. */
  curl_multi_cleanup(m->multi);
  m->multi = NULL;
  while (m->socks != NULL) sock_close(m, m->socks);
  uv_timer_stop(&m->timer);
  uv_close((uv_handle_t *)&m->timer, on_handle_closed);
}

static void maybe_destroy(mu_http_multi *m) {
  if (m->refs == 0 && m->dispatching == 0 && !m->closing) destroy(m);
}

/* Hands every finished transfer to its owner. */
static void check_done(mu_http_multi *m) {
  CURLMsg *msg;
  int left;
  m->dispatching++;
  while (m->multi != NULL && (msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL *easy = msg->easy_handle;
    CURLcode result = msg->data.result;
    mu_http_xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(m->multi, easy);
    m->active--;
    if (x != NULL) {
      x->multi = NULL;
      x->done(x->arg, result);
    }
  }
  m->dispatching--;
  maybe_destroy(m);
}

static void action(mu_http_multi *m, curl_socket_t fd, int flags) {
  int running = 0;
  m->dispatching++;
  curl_multi_socket_action(m->multi, fd, flags, &running);
  m->dispatching--;
  check_done(m);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *sc = h->data;
  int flags = 0;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  action(sc->m, sc->fd, flags);
}

static void on_timer(uv_timer_t *h) { action(h->data, CURL_SOCKET_TIMEOUT, 0); }

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  (void)easy;
  mu_http_multi *m = userp;
  sock_ctx *sc = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (sc != NULL) {
      sock_close(m, sc);
      if (!m->closing) curl_multi_assign(m->multi, fd, NULL);
    }
    return 0;
  }
  if (sc == NULL) {
    sc = calloc(1, sizeof *sc);
    if (sc == NULL) return -1;
    sc->fd = fd;
    sc->m = m;
    if (uv_poll_init_socket(m->loop, &sc->poll, fd) != 0) {
      free(sc);
      return -1;
    }
    sc->poll.data = sc;
    sc->next = m->socks;
    if (m->socks != NULL) m->socks->prev = sc;
    m->socks = sc;
    m->open_handles++;
    curl_multi_assign(m->multi, fd, sc);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  return uv_poll_start(&sc->poll, events, on_poll) == 0 ? 0 : -1;
}

static int on_timer_set(CURLM *multi, long timeout_ms, void *userp) {
  (void)multi;
  mu_http_multi *m = userp;
  if (timeout_ms < 0) return uv_timer_stop(&m->timer);
  /* Never call into curl from here: a 0 timeout runs on the next loop turn. */
  return uv_timer_start(&m->timer, on_timer, (uint64_t)timeout_ms, 0);
}

int mu_http_multi_acquire(uv_loop_t *loop, mu_http_multi **ret) {
  pthread_once(&curl_once, global_init);
  pthread_mutex_lock(&registry_mu);
  mu_http_multi *m = registry;
  while (m != NULL && m->loop != loop) m = m->next;
  if (m != NULL) {
    m->refs++;
    pthread_mutex_unlock(&registry_mu);
    *ret = m;
    return 0;
  }
  m = calloc(1, sizeof *m);
  if (m != NULL) m->multi = curl_multi_init();
  if (m == NULL || m->multi == NULL) {
    pthread_mutex_unlock(&registry_mu);
    free(m);
    return -ENOMEM;
  }
  m->loop = loop;
  m->refs = 1;
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  m->open_handles = 1;
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
  curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
  m->next = registry;
  registry = m;
  pthread_mutex_unlock(&registry_mu);
  *ret = m;
  return 0;
}

void mu_http_multi_release(mu_http_multi *m) {
  if (m == NULL) return;
  m->refs--;
  maybe_destroy(m);
}

int mu_http_multi_add(mu_http_multi *m, mu_http_xfer *x) {
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
  if (curl_multi_add_handle(m->multi, x->easy) != CURLM_OK) return -EIO;
  x->multi = m;
  m->active++;
  return 0;
}

void mu_http_multi_remove(mu_http_xfer *x) {
  mu_http_multi *m = x->multi;
  if (m == NULL) return;
  m->dispatching++;
  curl_multi_remove_handle(m->multi, x->easy);
  m->dispatching--;
  m->active--;
  x->multi = NULL;
  maybe_destroy(m);
}

int mu_http_multi_active(const mu_http_multi *m) { return m->active; }
