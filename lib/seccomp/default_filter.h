/* The default seccomp filter of container tasks (plugins/container) and task sandboxes
 * (agent/exec/sandbox_enter.h), one definition for both. Docker's default profile is the
 * reference: EPERM for mount, umount2, pivot_root, chroot, ptrace, process_vm_*, module and
 * kexec loading, bpf, perf_event_open, unshare, setns and clone with namespace flags (clone3
 * answers ENOSYS so libc falls back to clone), keyrings, userfaultfd, open_by_handle_at, clock
 * setting, reboot, syslog, acct, swapon, quotactl, the new mount API, personality other than
 * the default, AF_PACKET sockets. Docker's profile is an allow-list; this is a deny-list of the
 * same dangerous calls (new kernel syscalls are allowed until listed). */
#ifndef MU_SECCOMP_DEFAULT_FILTER_H
#define MU_SECCOMP_DEFAULT_FILTER_H

#include <stddef.h>

/* Loads the filter into the calling thread (and what it execs). Load it last, after
 * no_new_privs (or as root). 0, or -1 with msg ("seccomp_load: ..."). */
int mu_seccomp_default_load(char *msg, size_t cap);

#endif
