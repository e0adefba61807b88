/* mu_pb_dup: a deep copy of a protobuf-c message by walking its descriptor, for a message built
 * on the stack over borrowed strings (RunAdhoc's JobSpec) or one whose owner frees it soon (a
 * request) that must live on. No pack and unpack: strings, bytes, sub-messages, repeated
 * fields, maps, the active oneof member and unknown fields are copied as they are. */
#ifndef MU_PBDUP_H
#define MU_PBDUP_H

#include <protobuf-c/protobuf-c.h>

/* A copy of msg that shares nothing with it, freed with protobuf_c_message_free_unpacked(copy,
 * NULL) like an unpacked message (the caller owns it). NULL when out of memory (nothing is
 * left allocated) or when msg is NULL. */
ProtobufCMessage *mu_pb_dup(const ProtobufCMessage *msg);

#endif
