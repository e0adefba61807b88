/* Hello checks (hello.h): the agent id's alphabet and the label bounds the registry relies on,
 * and what every AgentMessage on a stream must be. */
#include "controlplane/hello.h"

#include <ctype.h>
#include <string.h>

#include "lib/pbjson/pbjson.h"

static int valid_agent_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > 128) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)id[i]) && strchr("._-", id[i]) == NULL) return 0;
  return 1;
}

#define MU_HELLO_MAX_PLUGINS 256

int mu_hello_check(const Muster__V1__Hello *h, mu_err *err) {
  if (!valid_agent_id(h->agent_id))
    return mu_err_set(err, MU_EINVAL, "Hello.agent_id '%.130s' is invalid (1-128 of [A-Za-z0-9._-])", h->agent_id);
  if (h->n_labels > 64) return mu_err_set(err, MU_EINVAL, "Hello.labels: %zu labels, at most 64 allowed", h->n_labels);
  for (size_t i = 0; i < h->n_labels; i++) {
    if (h->labels[i]->key[0] == '\0' || strlen(h->labels[i]->key) > 63 || strlen(h->labels[i]->value) > 255)
      return mu_err_set(err, MU_EINVAL, "Hello.labels['%.63s']: key must be 1-63 bytes, value at most 255",
                        h->labels[i]->key);
  }
  return 0;
}

int mu_agent_message_check(const Muster__V1__AgentMessage *msg, int hello_seen, mu_err *err) {
  mu_err bad = {0};
  if (mu_pbjson_proto3_check(&msg->base, &bad) != 0) /* could be neither stored nor copied */
    return mu_err_set(err, MU_EINVAL, "malformed AgentMessage: %s; closing this stream", bad.msg);
  if (!hello_seen) {
    if (msg->msg_case != MUSTER__V1__AGENT_MESSAGE__MSG_HELLO)
      return mu_err_set(err, MU_EINVAL, "the first message on a Connect stream must be Hello (got field %d)",
                        (int)msg->msg_case);
    return mu_hello_check(msg->hello, err);
  }
  switch (msg->msg_case) {
    case MUSTER__V1__AGENT_MESSAGE__MSG_HEARTBEAT:
      if (msg->heartbeat->metrics == NULL) return mu_err_set(err, MU_EINVAL, "Heartbeat without metrics");
      return 0;
    case MUSTER__V1__AGENT_MESSAGE__MSG_HELLO: return mu_err_set(err, MU_EINVAL, "Hello sent twice on one stream");
    case MUSTER__V1__AGENT_MESSAGE__MSG_PLUGINS_CHANGED: { /* kept in the agent's Hello: bounded */
      const Muster__V1__PluginsChanged *pc = msg->plugins_changed;
      if (pc->n_plugins > MU_HELLO_MAX_PLUGINS)
        return mu_err_set(err, MU_EINVAL, "PluginsChanged: %zu plugins, at most %d allowed", pc->n_plugins,
                          MU_HELLO_MAX_PLUGINS);
      for (size_t i = 0; i < pc->n_plugins; i++)
        if (pc->plugins[i]->type[0] == '\0' || strlen(pc->plugins[i]->type) > 64 ||
            strlen(pc->plugins[i]->version) > 64)
          return mu_err_set(err, MU_EINVAL, "PluginsChanged.plugins[%zu]: type must be 1-64 bytes, version at most 64",
                            i);
      return 0;
    }
    case MUSTER__V1__AGENT_MESSAGE__MSG__NOT_SET:
      return mu_err_set(err, MU_EINVAL, "empty AgentMessage (no field set)");
    default: return 0;
  }
}
