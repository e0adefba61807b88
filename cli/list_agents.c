/* ListAgents a page at a time, merged into one response (list_agents.h). */
#include "cli/list_agents.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE 10000

/* Moves page's agents to the end of all's (protobuf-c's default allocator is malloc). */
static int append_page(Muster__V1__ListAgentsResponse *all, Muster__V1__ListAgentsResponse *page) {
  if (page->n_agents == 0) return 0;
  Muster__V1__AgentInfo **grown = realloc(all->agents, (all->n_agents + page->n_agents) * sizeof *grown);
  if (grown == NULL) return MU_ENOMEM;
  memcpy(grown + all->n_agents, page->agents, page->n_agents * sizeof *grown);
  all->agents = grown;
  all->n_agents += page->n_agents;
  page->n_agents = 0; /* now all's */
  return 0;
}

int mu_cli_list_agents(const mu_cli_opts *opts, const Muster__V1__ListAgentsRequest *req, ProtobufCMessage **ret,
                       mu_err *err) {
  Muster__V1__ListAgentsRequest page_req = *req;
  page_req.page_size = req->page_size ? req->page_size : PAGE_SIZE;
  page_req.page_token = "";
  ProtobufCMessage *first = NULL;
  int rc = mu_cli_unary(opts, "/muster.v1.Admin/ListAgents", &page_req.base,
                        &muster__v1__list_agents_response__descriptor, &first, err);
  if (rc != 0) return rc;
  Muster__V1__ListAgentsResponse *all = (Muster__V1__ListAgentsResponse *)first;
  char *token = all->next_page_token; /* owned by the last page read */
  ProtobufCMessage *last = NULL;
  while (rc == 0 && token != NULL && token[0] != '\0') {
    page_req.page_token = token;
    ProtobufCMessage *next = NULL;
    rc = mu_cli_unary(opts, "/muster.v1.Admin/ListAgents", &page_req.base,
                      &muster__v1__list_agents_response__descriptor, &next, err);
    if (rc != 0) break;
    Muster__V1__ListAgentsResponse *page = (Muster__V1__ListAgentsResponse *)next;
    if (strcmp(page->next_page_token, token) == 0) {
      rc = mu_err_set(err, MU_EIO, "ListAgents: the server repeated page token '%s'", token);
    } else if (append_page(all, page) != 0) {
      rc = mu_err_set(err, MU_ENOMEM, "ListAgents: out of memory after %zu agents", all->n_agents);
    }
    if (last != NULL) protobuf_c_message_free_unpacked(last, NULL);
    last = next;
    token = page->next_page_token;
  }
  if (last != NULL) protobuf_c_message_free_unpacked(last, NULL);
  if (rc != 0) {
    protobuf_c_message_free_unpacked(first, NULL);
    return rc;
  }
  *ret = first;
  return 0;
}
