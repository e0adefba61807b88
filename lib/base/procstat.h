/* A process's identity beyond its pid: its start time, so a pid written to a file earlier can
 * be checked to still name the same process (pids are reused). */
#ifndef MU_PROCSTAT_H
#define MU_PROCSTAT_H

#include <sys/types.h>

/* Field 22 of /proc/<pid>/stat (clock ticks after boot); 0 when there is no such process or
 * it has ended (a zombie). */
unsigned long long mu_proc_start_time(pid_t pid);

#endif
