/* Helpers the version schemes share (version_*.c); not part of the API. */
#ifndef MU_IMAGESCAN_VERSION_INT_H
#define MU_IMAGESCAN_VERSION_INT_H

#include <stdbool.h>
#include <stdint.h>

/* A run of decimal digits at *p into *ret, *p moved past it; false when there is none or it
 * does not fit in 64 bits. */
bool mu_ver_digits(const char **p, uint64_t *ret);

#endif
