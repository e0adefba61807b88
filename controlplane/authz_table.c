/* The one permission table: every method musterd serves and what its caller needs. A method
 * that is not listed here is denied by the gate (authz.c), whatever handler it has. Add a line
 * with every new RPC. */
#include <string.h>

#include "controlplane/authz.h"

static const struct {
  const char *method;
  mu_perm perm;
} perm_table[] = {
    {"/grpc.health.v1.Health/Check", MU_PERM_OPEN},
    {"/grpc.health.v1.Health/Watch", MU_PERM_OPEN}, /* not served: UNIMPLEMENTED */
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", MU_PERM_AUTHENTICATED},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", MU_PERM_AUTHENTICATED},
    {"/muster.v1.AgentGateway/Connect", MU_PERM_AGENT},
    /* reads */
    {"/muster.v1.Admin/GetCluster", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListAgents", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListImages", MU_PERM_VIEW},
    {"/muster.v1.Admin/PruneImages", MU_PERM_OPERATE},
    {"/muster.v1.Admin/GetJob", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListJobs", MU_PERM_VIEW},
    {"/muster.v1.Admin/WatchJob", MU_PERM_VIEW},
    {"/muster.v1.Admin/TaskLogs", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListBundles", MU_PERM_VIEW},
    {"/muster.v1.Schedules/ListSchedules", MU_PERM_VIEW},
    {"/muster.v1.Schedules/GetSchedule", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListSavepoints", MU_PERM_VIEW},
    {"/muster.v1.Admin/ListRunHistory", MU_PERM_VIEW},
    /* running things (scope and task types checked by the handlers) */
    {"/muster.v1.Admin/SubmitJob", MU_PERM_OPERATE},
    {"/muster.v1.Admin/RunAdhoc", MU_PERM_OPERATE},
    {"/muster.v1.Admin/CancelJob", MU_PERM_OPERATE},
    {"/muster.v1.Admin/HoldJob", MU_PERM_OPERATE},
    {"/muster.v1.Admin/ReleaseJob", MU_PERM_OPERATE},
    {"/muster.v1.Admin/DrainAgent", MU_PERM_OPERATE},
    /* schedules: create checks the job as SubmitJob does, for this caller */
    {"/muster.v1.Schedules/CreateSchedule", MU_PERM_OPERATE},
    {"/muster.v1.Schedules/PauseSchedule", MU_PERM_OPERATE},
    {"/muster.v1.Schedules/ResumeSchedule", MU_PERM_OPERATE},
    {"/muster.v1.Schedules/DeleteSchedule", MU_PERM_OPERATE},
    {"/muster.v1.Schedules/TriggerSchedule", MU_PERM_OPERATE},
    /* job templates: create checks the job as SubmitJob does; Dispatch submits one */
    {"/muster.v1.Templates/ListTemplates", MU_PERM_VIEW},
    {"/muster.v1.Queues/ListQueues", MU_PERM_VIEW},
    {"/muster.v1.ImagePolicies/GetImagePolicy", MU_PERM_VIEW},
    {"/muster.v1.PluginConfigs/GetPluginConfig", MU_PERM_VIEW},
    {"/muster.v1.ImagePolicies/TestImagePolicy", MU_PERM_VIEW},
    {"/muster.v1.Templates/GetTemplate", MU_PERM_VIEW},
    {"/muster.v1.Templates/CreateTemplate", MU_PERM_OPERATE},
    {"/muster.v1.Templates/DeleteTemplate", MU_PERM_OPERATE},
    {"/muster.v1.Templates/Dispatch", MU_PERM_OPERATE},
    {"/muster.v1.Admin/TaskAction", MU_PERM_OPERATE},
    /* what runs, who may, and with which secrets */
    {"/muster.v1.Admin/UploadBundle", MU_PERM_ADMIN},
    {"/muster.v1.Admin/DeleteBundle", MU_PERM_ADMIN},
    {"/muster.v1.Admin/RemoveAgent", MU_PERM_ADMIN},
    {"/muster.v1.ImagePolicies/SetImagePolicy", MU_PERM_ADMIN},
    {"/muster.v1.PluginConfigs/SetPluginConfig", MU_PERM_ADMIN},
    /* named queues: shares and limits of everyone's jobs */
    {"/muster.v1.Queues/SetQueue", MU_PERM_ADMIN},
    {"/muster.v1.Queues/DeleteQueue", MU_PERM_ADMIN},
    {"/muster.v1.Tokens/CreateToken", MU_PERM_ADMIN},
    {"/muster.v1.Tokens/ListTokens", MU_PERM_ADMIN},
    {"/muster.v1.Tokens/RevokeToken", MU_PERM_ADMIN},
    {"/muster.v1.Secrets/SetSecret", MU_PERM_ADMIN},
    {"/muster.v1.Secrets/ListSecrets", MU_PERM_ADMIN},
    {"/muster.v1.Secrets/DeleteSecret", MU_PERM_ADMIN},
    {"/muster.v1.Secrets/RotateSecretKey", MU_PERM_ADMIN},
    /* who did what */
    {"/muster.v1.Audit/ListAudit", MU_PERM_ADMIN},
};

mu_perm mu_authz_method_perm(const char *method) {
  for (size_t i = 0; i < sizeof perm_table / sizeof perm_table[0]; i++)
    if (strcmp(perm_table[i].method, method) == 0) return perm_table[i].perm;
  return 0;
}
