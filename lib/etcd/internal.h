/* Private to lib/etcd: the client, one HTTP request to the gateway, and the JSON codec shared
 * by client.c (transport), kv.c (operations, txn builder), watch.c and codec.c.
 *
 * Re-entrancy rule: user callbacks run only from client_flush() (completions) and
 * mu__etcd_watch_deliver_all() (watch messages), never from inside a libcurl callback, and the client is
 * torn down only when no dispatch is on the stack (depth == 0). */
#ifndef MU_ETCD_INTERNAL_H
#define MU_ETCD_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>

#include "lib/etcd/etcd.h"

typedef struct mu_etcd_req mu_etcd_req;
typedef struct mu_etcd_sock mu_etcd_sock;

/* One POST to one gateway path, retried over the endpoints when it cannot connect. */
struct mu_etcd_req {
  mu_etcd_client *c;
  mu_etcd_req *prev, *next; /* c->reqs (live) */
  mu_etcd_req *done_next;   /* c->done_head queue once completed */
  CURL *easy;
  struct curl_slist *headers;
  char path[128]; /* "/v3/kv/range" */
  char *body;     /* owned */
  size_t body_len;
  char what[160]; /* "put '/muster/x'" for messages */
  char *resp;     /* reply bytes (unary only), owned */
  size_t resp_len, resp_cap;
  bool resp_overflow;
  size_t ep_idx; /* endpoint of the current attempt */
  size_t attempts;
  char tried[400];    /* "url (reason), ..." of failed connects */
  uint64_t token_gen; /* c->token_gen when sent */
  bool in_multi, waiting_auth, reauthed, is_auth;
  mu_etcd_watch *watch; /* set for a watch stream */
  /* unary completion */
  mu_etcd_kind kind;
  int64_t begin_mono_ns; /* submitted (for opts.observe) */
  mu_etcd_cb cb;
  void *ud;
  mu_etcd_result *res; /* set when completed ok */
  mu_err err;          /* set when completed with an error */
};

struct mu_etcd_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  mu_etcd_client *c;
  mu_etcd_sock *prev, *next;
};

struct mu_etcd_client {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  char **endpoints;
  size_t n_endpoints;
  size_t good;          /* last endpoint that answered */
  mu_etcd_options opts; /* defaults filled, strings owned */
  char *token;          /* etcd auth token, owned */
  uint64_t token_gen;
  bool auth_running;
  mu_etcd_req *reqs;
  mu_etcd_req *done_head, *done_tail;
  mu_etcd_watch *watches;
  mu_etcd_sock *socks;
  int depth; /* dispatches on the stack */
  bool closing, torn_down;
  int pending_closes; /* libuv handles not yet closed */
  void (*close_cb)(void *ud);
  void *close_ud;
};

/* ---- client.c ---- */
/* Takes ownership of body (a JSON text). Never calls user code. */
int mu__etcd_client_req_new(mu_etcd_client *c, const char *path, char *body, const char *what, mu_etcd_req **ret_req,
                            mu_err *err);
/* Starts (or queues behind authentication) a request built by mu__etcd_client_req_new. */
int mu__etcd_client_req_submit(mu_etcd_req *r, mu_err *err);
/* Removes a request from everything and frees it; no callback. */
void mu__etcd_client_req_drop(mu_etcd_req *r);
void mu__etcd_client_enter(mu_etcd_client *c);
void mu__etcd_client_leave(mu_etcd_client *c); /* may tear the client down */
void mu__etcd_client_handle_closed(mu_etcd_client *c);
/* Submits a unary op: body is owned from here on (freed on error too). */
int mu__etcd_client_unary(mu_etcd_client *c, mu_etcd_kind kind, const char *path, char *body, const char *what,
                          mu_etcd_cb cb, void *ud, mu_err *err);

/* ---- watch.c ---- */
void mu__etcd_watch_on_data(mu_etcd_watch *w);                    /* new bytes arrived */
void mu__etcd_watch_on_done(mu_etcd_watch *w, const mu_err *err); /* its stream ended */
size_t mu__etcd_watch_write(mu_etcd_watch *w, const char *data, size_t len);
void mu__etcd_watch_deliver_all(mu_etcd_client *c);
void mu__etcd_watch_close_all(mu_etcd_client *c); /* teardown: MU_ECANCELED to each */
bool mu__etcd_watch_wants_delivery(const mu_etcd_watch *w);

/* ---- codec.c ---- */
char *mu__etcd_codec_b64(const void *data, size_t len); /* NULL on no memory */
int mu__etcd_codec_unb64(const char *text, char **ret, size_t *ret_len);
int64_t mu__etcd_codec_int(json_t *obj, const char *field);
void mu__etcd_codec_show_key(const char *key, size_t len, char *buf, size_t cap);
int mu__etcd_codec_set_bytes(json_t *obj, const char *field, const void *data, size_t len);
int mu__etcd_codec_range(const mu_etcd_range_req *req, json_t **ret, size_t *payload, mu_err *err);
int mu__etcd_codec_put(const mu_etcd_put_req *req, json_t **ret, size_t *payload, mu_err *err);
int mu__etcd_codec_delete(const mu_etcd_delete_req *req, json_t **ret, size_t *payload, mu_err *err);
/* Key and range end for a key/range_end/prefix triple (prefix of "" → every key). */
int mu__etcd_codec_key_range(json_t *obj, const char *key, size_t key_len, const char *range_end, size_t range_end_len,
                             bool prefix, size_t *payload, mu_err *err);
int mu__etcd_codec_kv(json_t *j, mu_etcd_kv *kv);
void mu__etcd_codec_kv_clear(mu_etcd_kv *kv);
int mu__etcd_codec_result(mu_etcd_kind kind, json_t *reply, mu_etcd_result *res, mu_err *err);
void mu__etcd_codec_result_clear(mu_etcd_result *res);
/* Maps an etcd error reply ({"error","message","code"}) to a mu_err; returns its code. (Named
 * for its callers in client.c and watch.c.) */
int mu__etcd_client_etcd_error(const char *what, long http_status, json_t *reply, mu_err *err);

#endif
