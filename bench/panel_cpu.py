#!/usr/bin/python3
"""panel_cpu: the CPU the `muster run` live panel costs while a 1,000-host job runs.

musterd (in memory, plaintext) and 1,000 simulated agents (integration/sim_agents, one
process, each a real gRPC agent stream) whose tasks take --task-time; `muster run --all
--max-concurrency C -- hostname` on a pseudo-terminal (so the panel redraws at 10 Hz), its
output drained by this script. The CLI's user + system CPU time (wait4 rusage) over its wall
time is the figure, for these forms:

  panel+summary   --summary-only: the panel only (the issue's figure: target < 5 % of a core)
  panel+results   the default: each host's result printed above the panel as it ends
  no-panel        --no-panel on the same terminal: what following the stream costs without it
  pipe            stdout and stderr a pipe (no terminal: no panel)

Prints one line per form: wall seconds, CPU ms, CPU % of one core, bytes written.

usage: panel_cpu.py MUSTERD SIM_AGENTS MUSTER [--hosts 1000] [--task-time 4s]
                    [--concurrency 250] [--runs 3]
"""
import argparse
import os
import pty
import select
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(argv, tty):
    """Runs argv with stdout+stderr on a new pty (tty) or a pipe; returns (wall s, cpu s,
    bytes, exit status)."""
    t0 = time.monotonic()
    if tty:
        master, slave = pty.openpty()
        os.set_blocking(master, False)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                             env=dict(os.environ, TERM="xterm-256color", COLUMNS="120"))
        os.close(slave)
        fd = master
    else:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        fd = p.stdout.fileno()
        os.set_blocking(fd, False)
    n = 0
    status = None
    while status is None:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
                n += len(data)
            except (BlockingIOError, OSError):
                pass
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            status = (st, ru)
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            n += len(data)
    except (BlockingIOError, OSError):
        pass
    if tty:
        os.close(fd)
    else:
        p.stdout.close()
    p.returncode = 0  # reaped by wait4 above
    st, ru = status
    return time.monotonic() - t0, ru.ru_utime + ru.ru_stime, n, os.waitstatus_to_exitcode(st)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("musterd")
    ap.add_argument("sim_agents")
    ap.add_argument("muster")
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--task-time", default="4s")
    ap.add_argument("--concurrency", default="250")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="panel-cpu-")
    addr = "127.0.0.1:%d" % free_port()
    log = open(os.path.join(work, "musterd.log"), "wb")
    d = subprocess.Popen([a.musterd, "--listen", addr, "--no-etcd", "--insecure",
                          "--heartbeat-timeout", "10s"], stdout=log, stderr=subprocess.STDOUT)
    sims = None
    try:
        deadline = time.monotonic() + 20
        while subprocess.run([a.muster, "--addr", addr, "cluster"], capture_output=True).returncode:
            assert time.monotonic() < deadline, "musterd did not answer"
            time.sleep(0.1)
        sims = subprocess.Popen([a.sim_agents, "--control", addr, "--agents", str(a.hosts),
                                 "--prefix", "host", "--task-time", a.task_time,
                                 "--heartbeat-interval", "2s"], stdout=subprocess.PIPE,
                                stderr=open(os.path.join(work, "sims.log"), "wb"))
        assert sims.stdout.readline().startswith(b"ready"), "simulated agents did not connect"
        base = [a.muster, "--addr", addr, "run", "--all", "--max-concurrency", a.concurrency]
        forms = [("panel+summary", base + ["--summary-only"], True),
                 ("panel+results", base, True),
                 ("no-panel", base + ["--no-panel"], True),
                 ("pipe", base, False)]
        print("panel_cpu: %d simulated hosts, tasks of %s, at most %s at once, %d runs each"
              % (a.hosts, a.task_time, a.concurrency, a.runs))
        print("%-14s %8s %8s %8s %10s" % ("form", "wall_s", "cpu_ms", "cpu_%", "bytes"))
        for name, argv, tty in forms:
            for _ in range(a.runs):
                wall, cpu, n, rc = run_cli(argv + ["--", "hostname"], tty)
                assert rc == 0, "%s exited %d" % (name, rc)
                print("%-14s %8.2f %8.0f %8.2f %10d" % (name, wall, cpu * 1000, 100 * cpu / wall, n),
                      flush=True)
    finally:
        if sims is not None:
            sims.terminate()
            sims.wait()
        d.terminate()
        d.wait()


if __name__ == "__main__":
    sys.exit(main())
