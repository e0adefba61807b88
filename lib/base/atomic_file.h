/* Small files replaced whole: written to a temporary name beside them and renamed, so a
 * reader sees the old content or the new, never a part. */
#ifndef MU_ATOMIC_FILE_H
#define MU_ATOMIC_FILE_H

/* Writes text as dir/name (mode 0600 for a new file) through "dir/.name.<pid>.tmp" (so
 * concurrent writers of the same name do not collide) and rename; no fsync (for files that
 * must outlive a process, not the machine). 0, or -1 with errno. */
int mu_atomic_file_write(const char *dir, const char *name, const char *text);

#endif
