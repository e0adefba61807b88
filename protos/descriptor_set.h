/* The serialized google.protobuf.FileDescriptorSet of every proto musterd serves, embedded at
 * build time so server reflection works with no .proto files on disk. */
#ifndef MU_DESCRIPTOR_SET_H
#define MU_DESCRIPTOR_SET_H
#include <stddef.h>

extern const unsigned char mu_descriptor_set[];
extern const size_t mu_descriptor_set_len;

#endif
