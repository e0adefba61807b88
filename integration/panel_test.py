"""The live panel of `muster run` as an operator sees it in a terminal (tmux, a Debian test
tool): a job over 300 simulated hosts whose tasks each take 3 s (sim_agents --task-time), at
most 100 at a time, so hosts end in three waves with nothing happening in between.

- Two captures inside one wave (no task event between them): the elapsed time moved — the
  panel is redrawn by a timer, not by events — and the bar did not.
- A capture after the next wave: the bar and the host count advanced.
- At the end the panel is gone and the summary is there.
- Off a terminal (a pipe), the same run prints no control codes at all; NO_COLOR and
  --color never keep colours out of a terminal too.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from harness import Cluster, Proc, main, wait_until

HOSTS = 300
TASK = "3s"


def sim_bin():
    return os.path.abspath(sys.argv[4])


class PlaintextCluster(Cluster):
    """One process plays every agent, without certificates: the plaintext path."""
    insecure = True


def start_fleet(c):
    c.start_musterd("--heartbeat-timeout", "5s")
    sims = Proc("sims", [sim_bin(), "--control", c.addr, "--agents", str(HOSTS), "--prefix", "web",
                         "--task-time", TASK, "--heartbeat-interval", "1s"], c.workdir)
    c.agents["sims"] = sims
    wait_until("%d simulated agents" % HOSTS, lambda: len(c.agents_json() or {}) == HOSTS,
               timeout=60)


class Tmux:
    def __init__(self, c, command, env=""):
        self.name = "muster-panel-%d" % os.getpid()
        # a socket path must fit sun_path (108 bytes): Bazel's TEST_TMPDIR does not
        self.dir = tempfile.mkdtemp(prefix="mpanel-", dir="/tmp")
        self.sock = os.path.join(self.dir, "tmux.sock")
        subprocess.run(["tmux", "-S", self.sock, "new-session", "-d", "-s", self.name, "-x", "120",
                        "-y", "40", "%s %s; echo EXIT=$?; sleep 60" % (env, command)], check=True)

    def capture(self, escapes=False):
        args = ["tmux", "-S", self.sock, "capture-pane", "-p", "-t", self.name]
        if escapes:
            args.insert(4, "-e")
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def close(self):
        subprocess.run(["tmux", "-S", self.sock, "kill-server"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


PANEL = re.compile(r"^job (j-\S+) \[([#-]+)\] (\d+)/(\d+) hosts +(\d+)%  (\S+)  ETA (\S+)$", re.M)


def seconds(text):
    m = re.match(r"^(\d+)ms$", text)
    if m:
        return int(m.group(1)) / 1000
    m = re.match(r"^(\d+(?:\.\d+)?)s$", text)
    if m:
        return float(m.group(1))
    m = re.match(r"^(\d+)m(\d+)s$", text)
    assert m, text
    return int(m.group(1)) * 60 + int(m.group(2))


def panel(t):
    """(ended hosts, bar cells filled, elapsed seconds, screen) of the panel on screen now."""
    screen = t.capture()
    m = PANEL.search(screen)
    if m is None:
        return None
    return int(m.group(3)), m.group(2).count("#"), seconds(m.group(6)), screen


def test_panel_ticks_and_advances(c):
    start_fleet(c)
    cli = "%s --addr %s run --all --max-concurrency 100 --summary-only -- hostname" % (
        c.cli_bin, c.addr)
    t = Tmux(c, cli)
    try:
        # inside the first wave: tasks take 3 s, nothing ends before that
        first = wait_until("the panel", lambda: panel(t), timeout=10)
        assert first[0] == 0, first[3]
        time.sleep(0.6)
        second = panel(t)
        assert second is not None, t.capture()
        # no event between the captures (nothing ended), and still the clock moved
        assert second[0] == first[0] == 0 and second[1] == first[1] == 0, second[3]
        assert second[2] >= first[2] + 0.4, (first[3], second[3])
        assert re.search(r"running: web-\d+ \d+(ms|\.\d+s)", second[3]), second[3]
        # the first wave ends: the bar and the count advance
        later = wait_until("the first wave to end", lambda: (lambda p: p if p and p[0] >= 100 else None)(panel(t)),
                           timeout=15)
        assert later[1] > 0 and later[2] > second[2], later[3]
        assert re.search(r"ETA \d", later[3]), later[3]  # from the ended hosts' durations
        assert "300 targets: " in later[3] and " succeeded" in later[3], later[3]
        done = wait_until("the summary", lambda: "EXIT=" in t.capture() and t.capture(), timeout=30)
        assert "EXIT=0" in done, done
        assert PANEL.search(done) is None, done  # the panel made way for the summary
        assert re.search(r"^job j-\S+ succeeded: 300 targets: 300 succeeded \(", done, re.M), done
        # colours on a terminal, unless NO_COLOR
        assert "\033[32m" in t.capture(escapes=True), t.capture(escapes=True)
    finally:
        t.close()
    t = Tmux(c, cli.replace("run ", "run --lines 1 ").replace("--summary-only", ""), env="NO_COLOR=1")
    try:
        done = wait_until("the summary", lambda: "EXIT=" in t.capture() and t.capture(), timeout=40)
        assert "EXIT=0" in done and re.search(r"^web-\d+: web-\d+$", done, re.M), done
        colours = t.capture(escapes=True)
        assert "\033[32m" not in colours and "\033[31m" not in colours, colours[-2000:]
    finally:
        t.close()
    # off a terminal: plain lines, not one escape
    r = subprocess.run(cli.split(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\033" not in r.stdout and "\033" not in r.stderr and "\r" not in r.stderr, \
        (r.stdout[-500:], r.stderr[-500:])
    assert "300 targets: 300 succeeded" in r.stdout, r.stdout


if __name__ == "__main__":
    main(make_cluster=PlaintextCluster, test_functions=[test_panel_ticks_and_advances])
