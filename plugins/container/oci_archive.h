/* An image of the store exported as an OCI image layout in a tar (`muster image build
 * --oci-archive FILE`): oci-layout, index.json (one manifest, annotated
 * org.opencontainers.image.ref.name = the tag), blobs/sha256/<hex> for the manifest, the
 * config and every layer. Entries sorted, mtimes the build's epoch, owners 0:0: the same image
 * gives the same tar. Readable by `skopeo copy oci-archive:FILE ...` and by
 * mu_image_from_layout once unpacked. */
#ifndef MU_OCI_ARCHIVE_H
#define MU_OCI_ARCHIVE_H

#include <stdint.h>

#include "lib/base/err.h"

int mu_oci_archive_write(const char *root, const char *manifest_digest, const char *ref_name, int64_t epoch,
                         const char *out_path, mu_err *err);

#endif
