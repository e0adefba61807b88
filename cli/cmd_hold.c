/* `muster hold JOB [REASON]` and `muster release JOB [REASON]`: an operator's hold of an
 * unfinished job (JOB_HELD: no new hosts start, running ones go on) and its release, through
 * Admin/HoldJob and Admin/ReleaseJob (docs/scheduling.md, Held jobs). */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/output_json.h"
#include "cli/output_text.h"
#include "muster/v1/admin.pb-c.h"

static int hold_cmd(const mu_cli_opts *opts, int argc, char **argv, int hold) {
  const char *verb = hold ? "hold" : "release";
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    if (hold)
      puts(
          "usage: muster hold JOB [REASON]\n\nHolds an unfinished job: it is HELD and starts no new hosts (those "
          "running go on)\nuntil `muster release JOB`. The hold is stored and kept across leader failovers.");
    else
      puts(
          "usage: muster release JOB [REASON]\n\nReleases a job held with `muster hold`: it starts hosts again at "
          "the next pass\n(unless degradation, hold_above, still holds it).");
    return 0;
  }
  if (argc < 2 || argc > 3 || argv[1][0] == '-') {
    fprintf(stderr, "usage: muster %s JOB [REASON]\n", verb);
    return 2;
  }
  Muster__V1__HoldJobRequest req = MUSTER__V1__HOLD_JOB_REQUEST__INIT;
  req.job_id = argv[1];
  req.reason = argc == 3 ? argv[2] : hold ? "held with muster hold" : "released with muster release";
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, hold ? "/muster.v1.Admin/HoldJob" : "/muster.v1.Admin/ReleaseJob", &req.base,
                   &muster__v1__hold_job_response__descriptor, &reply, &err) != 0) {
    fprintf(stderr, "muster %s: %s\n", verb, err.msg);
    return 1;
  }
  Muster__V1__HoldJobResponse *r = (Muster__V1__HoldJobResponse *)reply;
  if (opts->json) {
    json_t *o = json_object();
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&muster__v1__job_state__descriptor, r->state);
    json_object_set_new(o, "jobId", json_string(argv[1]));
    json_object_set_new(o, "state", json_string(v ? v->name : "JOB_STATE_UNSPECIFIED"));
    mu_cli_json_emit(verb, o);
  } else if (!opts->quiet) {
    printf("job %s: %s (%s)\n", argv[1], hold ? "held" : "released", mu_job_state_word(r->state));
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}

int mu_cmd_hold(const mu_cli_opts *opts, int argc, char **argv) { return hold_cmd(opts, argc, argv, 1); }

int mu_cmd_release(const mu_cli_opts *opts, int argc, char **argv) { return hold_cmd(opts, argc, argv, 0); }
