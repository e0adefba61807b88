/* `muster-exec --server` (helper_server.c): serves spawn requests on fd 3 until the agent closes
 * it (exec_server_proto.h). Returns the process exit code when it cannot start. */
#ifndef MU_HELPER_SERVER_H
#define MU_HELPER_SERVER_H

int mu_helper_server(void);

#endif
