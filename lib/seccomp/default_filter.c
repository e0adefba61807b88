/* The default seccomp filter (default_filter.h): a deny-list of what Docker's default profile
 * refuses a container without capabilities. */
#define _GNU_SOURCE
#include "lib/seccomp/default_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int mu_seccomp_default_load(char *msg, size_t cap) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    snprintf(msg, cap, "seccomp_init failed");
    return -1;
  }
  static const char *const denied[] = {
      "mount",
      "umount",
      "umount2",
      "pivot_root",
      "chroot",
      "ptrace",
      "process_vm_readv",
      "process_vm_writev",
      "kexec_load",
      "kexec_file_load",
      "init_module",
      "finit_module",
      "delete_module",
      "bpf",
      "perf_event_open",
      "unshare",
      "setns",
      "keyctl",
      "add_key",
      "request_key",
      "userfaultfd",
      "open_by_handle_at",
      "name_to_handle_at",
      "acct",
      "swapon",
      "swapoff",
      "reboot",
      "syslog",
      "settimeofday",
      "clock_settime",
      "clock_adjtime",
      "adjtimex",
      "quotactl",
      "lookup_dcookie",
      "iopl",
      "ioperm",
      "move_mount",
      "open_tree",
      "fsopen",
      "fsmount",
      "fspick",
      "fsconfig",
      "mount_setattr",
      "vhangup",
      "nfsservctl",
      "uselib",
      "ustat",
      "sysfs",
      "_sysctl",
      "kcmp",
      "create_module",
      "get_kernel_syms",
      "query_module",
      "vm86",
      "vm86old",
      "stime",
      "pciconfig_read",
      "pciconfig_write",
      "lookup_dcookie",
      "fanotify_init",
      "setdomainname",
      "sethostname",
      "personality",
  };
  int rc = 0;
  for (size_t i = 0; i < sizeof denied / sizeof *denied; i++) {
    int nr = seccomp_syscall_resolve_name(denied[i]);
    if (nr == __NR_SCMP_ERROR) continue;
    if (strcmp(denied[i], "personality") == 0) {
      /* allow the harmless queries and PER_LINUX, as Docker does */
      rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, SCMP_A0(SCMP_CMP_NE, 0));
      continue;
    }
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
  }
  static const unsigned long ns_flags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                           CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
  for (size_t i = 0; i < sizeof ns_flags / sizeof *ns_flags; i++)
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
  int clone3 = seccomp_syscall_resolve_name("clone3");
  if (clone3 != __NR_SCMP_ERROR) rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
  /* raw and packet sockets need CAP_NET_RAW, which is dropped; AF_PACKET refused here too */
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_PACKET));
  if (rc != 0) {
    snprintf(msg, cap, "seccomp rules: %s", strerror(-rc));
    seccomp_release(ctx);
    return -1;
  }
  rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    snprintf(msg, cap, "seccomp_load: %s", strerror(-rc));
    return -1;
  }
  return 0;
}
