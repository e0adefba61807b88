#include "cli/temp_bundle.h"

#include <stdio.h>
#include <stdlib.h>

#include "lib/base/clock.h"
#include "muster/v1/admin.pb-c.h"

void mu_cli_temp_bundle_name(const char *prefix, char *name, size_t name_size, char *ref, size_t ref_size) {
  const char *user = getenv("USER");
  snprintf(name, name_size, "%s-%.40s-%lld", prefix, user && user[0] ? user : "user", (long long)mu_now_ms());
  for (char *c = name; *c; c++)
    if (!(*c >= 'a' && *c <= 'z') && !(*c >= '0' && *c <= '9') && *c != '-') *c = '-';
  snprintf(ref, ref_size, "%s@1.0.0", name);
}

int mu_cli_temp_bundle_delete(const mu_cli_opts *opts, const char *who, const char *ref) {
  Muster__V1__DeleteBundleRequest req = MUSTER__V1__DELETE_BUNDLE_REQUEST__INIT;
  req.ref = (char *)ref;
  ProtobufCMessage *reply = NULL;
  mu_err err = {0};
  if (mu_cli_unary(opts, "/muster.v1.Admin/DeleteBundle", &req.base, &muster__v1__delete_bundle_response__descriptor,
                   &reply, &err) != 0) {
    fprintf(stderr, "%s: could not remove bundle %s (muster bundle rm %s): %s\n", who, ref, ref, err.msg);
    return -1;
  }
  protobuf_c_message_free_unpacked(reply, NULL);
  return 0;
}
