#!/usr/bin/env bash
# ssh_peers.sh: the SSH side of bench/fanout's peer comparison (pdsh, clush, ansible).
# Starts a private sshd on a free loopback port with its own host key, an authorized key and
# config all in DIR, and writes an ssh_config naming t1..tN (all 127.0.0.1), an ansible
# inventory and a pid file. The system sshd and ~/.ssh are never touched.
#
#   ssh_peers.sh start DIR N   set up and start; prints "port=P" and "ssh_config=FILE"
#   ssh_peers.sh check         exit 0 when sshd, ssh, pdsh, clush and ansible are installed
#   ssh_peers.sh stop DIR      stop that sshd and any ssh ControlPersist masters under DIR
set -euo pipefail

die() { echo "ssh_peers: $*" >&2; exit 1; }

sshd_bin() {
  for p in /usr/sbin/sshd "$(command -v sshd 2>/dev/null || true)"; do
    [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return 0; }
  done
  return 1
}

check() {
  local missing=()
  sshd_bin >/dev/null || missing+=(sshd)
  for t in ssh ssh-keygen pdsh clush ansible; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "ssh_peers: not installed: ${missing[*]} (scripts/setup installs them)" >&2
    return 1
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 n=$2
  check || exit 1
  [ -d "$dir" ] || die "no such directory: $dir"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "N must be a positive count, got '$n'"
  dir=$(cd "$dir" && pwd)
  local user port
  user=$(id -un)
  port=$(free_port)
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" -C fanout-host >/dev/null
  ssh-keygen -q -t ed25519 -N '' -f "$dir/id_fanout" -C fanout-client >/dev/null
  cp "$dir/id_fanout.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys" "$dir/host_key" "$dir/id_fanout"
  # sshd wants its privilege separation directory even when it runs as a non-default instance.
  mkdir -p /run/sshd 2>/dev/null || true
  cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $user
UsePAM no
StrictModes no
UseDNS no
# The target "hosts" start with a clean HOME: the login user's own shell rc files (which may
# run slow tools on every login) are not part of what is measured.
SetEnv HOME=$dir/home
PrintMotd no
PrintLastLog no
MaxStartups 2000:100:4000
MaxSessions 1000
MaxAuthTries 6
LoginGraceTime 60
LogLevel ERROR
Subsystem sftp internal-sftp
EOF
  {
    for i in $(seq 1 "$n"); do
      printf 'Host t%d\n  HostName 127.0.0.1\n' "$i"
    done
    printf 'Host t*\n  Port %d\n  User %s\n  IdentityFile %s/id_fanout\n  IdentitiesOnly yes\n' \
      "$port" "$user" "$dir"
    printf '  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n'
    printf '  BatchMode yes\n  ConnectTimeout 30\n'
  } >"$dir/ssh_config"
  {
    echo "[all]"
    for i in $(seq 1 "$n"); do echo "t$i"; done
    echo "[all:vars]"
    echo "ansible_ssh_common_args='-F $dir/ssh_config'"
    echo "ansible_python_interpreter=/usr/bin/python3"
  } >"$dir/inventory"
  mkdir -p "$dir/ansible-cp" "$dir/ansible-local" "$dir/ansible-remote" "$dir/home"
  "$(sshd_bin)" -f "$dir/sshd_config" -E "$dir/sshd.log" || die "sshd did not start; see $dir/sshd.log"
  local i
  for i in $(seq 1 50); do
    if ssh -F "$dir/ssh_config" t1 true 2>>"$dir/ssh_check.log"; then
      echo "port=$port"
      echo "ssh_config=$dir/ssh_config"
      return 0
    fi
    sleep 0.1
  done
  stop "$dir"
  die "ssh to t1 (127.0.0.1:$port) failed; see $dir/ssh_check.log and $dir/sshd.log"
}

stop() {
  local dir=$1
  # ansible's ssh ControlPersist masters (ANSIBLE_SSH_CONTROL_PATH_DIR=$dir/ansible-cp)
  if [ -d "$dir/ansible-cp" ]; then
    for sock in "$dir"/ansible-cp/*; do
      [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit t >/dev/null 2>&1 || true
    done
  fi
  if [ -f "$dir/sshd.pid" ]; then
    kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
    rm -f "$dir/sshd.pid"
  fi
}

case "${1:-}" in
  start) [ $# -eq 3 ] || die "usage: ssh_peers.sh start DIR N"; start "$2" "$3" ;;
  stop) [ $# -eq 2 ] || die "usage: ssh_peers.sh stop DIR"; stop "$2" ;;
  check) check ;;
  *) die "usage: ssh_peers.sh start DIR N | stop DIR | check" ;;
esac
