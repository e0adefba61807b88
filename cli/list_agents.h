/* Every agent a ListAgents request matches, fetched a page at a time (ListAgentsRequest in
 * protos/muster/v1/admin.proto) and returned as one response. */
#ifndef MU_CLI_LIST_AGENTS_H
#define MU_CLI_LIST_AGENTS_H

#include "cli/client.h"
#include "muster/v1/admin.pb-c.h"

/* Pages through ListAgents with req's filters, req->page_size agents a call (0: 10000), and
 * returns all the agents in one *ret (free with protobuf_c_message_free_unpacked). Errors as
 * mu_cli_unary; MU_EIO when the server repeats a page token (no progress). */
int mu_cli_list_agents(const mu_cli_opts *opts, const Muster__V1__ListAgentsRequest *req, ProtobufCMessage **ret,
                       mu_err *err);

#endif
