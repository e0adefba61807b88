/* Directories the scan keeps (feed, cache) made with their parents, as `mkdir -p` does. */
#ifndef MU_IMAGESCAN_DIRS_H
#define MU_IMAGESCAN_DIRS_H

#include <sys/types.h>

/* 0, or -1 with errno set. An existing directory is fine. */
int mu_mkdir_p(const char *path, mode_t mode);

#endif
