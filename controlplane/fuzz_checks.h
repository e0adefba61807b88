/* What the fuzz targets check of what the control plane accepts (controlplane/request_fuzz.c,
 * cli/jobfile_fuzz.c): a spec goes through what mu_sched_submit checks before it resolves
 * targets, on a control plane that knows one plugin type ("sleep") and one bundle ("etl@2.3.0",
 * or any well-formed digest); whatever is kept must be storable. */
#ifndef MU_CP_FUZZ_CHECKS_H
#define MU_CP_FUZZ_CHECKS_H

#include <protobuf-c/protobuf-c.h>

#include "muster/v1/job.pb-c.h"

/* What the server keeps must turn into its etcd record: its JSON (job_json and agent_json in
 * persist.c). Aborts (a finding) when it does not. */
void mu_fuzz_storable(const ProtobufCMessage *msg);

/* Validates spec (taking it; NULL is a failed copy, a finding) and checks what must hold: a
 * refusal says why; an accepted spec has 1..64 named, typed tasks, a target and a positive
 * concurrency, and can be stored (its JSON, as persist.c writes it). */
void mu_fuzz_jobspec_submit(Muster__V1__JobSpec *spec);

#endif
