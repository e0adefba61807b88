"""End-to-end: `muster logs` gives back exactly what a task wrote, or says what is missing.

The operator's story: a task writes tens of megabytes; `muster logs JOB TASK` prints every
byte of it, in order, even when whatever reads muster's stdout is slow or has made the pipe
non-blocking (CI runners do). When some output is not there -- the agent's spool had no room
for it, it was past the task's output limit, it was evicted -- muster says which bytes are
missing and exits 1; `--allow-partial` accepts that (exit 0, the notes still on stderr).
"""
import fcntl
import hashlib
import json
import os
import re
import subprocess
import time

from harness import main, wait_until

HB = "300ms"
# A deterministic pseudo-random stream: AES-128-CTR of zeros under a fixed key.
GEN = ("openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 "
       "< /dev/zero 2>/dev/null | head -c %d")


def start(c, *agent_flags):
    c.start_musterd("--heartbeat-timeout", "3s")
    c.start_agent("web-1", "role=web", "--heartbeat-interval", HB, *agent_flags)
    wait_until("agent connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")


def submit(c, script, **resources):
    """Runs one shell task on web-1 to its end; returns the job id."""
    task = {"name": "run", "timeout": "5m", "shell": {"script": script}}
    if resources:
        task["resources"] = resources
    path = os.path.join(c.workdir, "job-%d.json" % time.monotonic_ns())
    with open(path, "w") as f:
        json.dump({"name": "logs", "target": {"hosts": ["web-1"]}, "tasks": [task]}, f)
    rc, out, err = c.cli("submit", path, "--quiet", check=False, timeout=300)
    assert rc == 0, (out, err)
    assert out.startswith("job j-"), out  # "job JOB succeeded: 1 target: 1 succeeded (...)"
    return out.split()[1]


def logs(c, *args):
    r = subprocess.run([c.cli_bin, "--addr", c.addr, "logs"] + list(args), capture_output=True,
                       timeout=300)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def logs_to_nonblocking_pipe(c, job, task, read_pause=0.0005):
    """`muster logs` with stdout a non-blocking pipe (the file description shared with a
    parent that set O_NONBLOCK, as node-based CI runners do) read by a slow consumer: the CLI
    meets EAGAIN all the time. Returns (exit code, sha256 and length of what came out, stderr)."""
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    p = subprocess.Popen([c.cli_bin, "--addr", c.addr, "logs", job, task], stdout=w,
                         stderr=subprocess.PIPE)
    os.close(w)
    h, n = hashlib.sha256(), 0
    with os.fdopen(r, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
            time.sleep(read_pause)
    err = p.stderr.read().decode(errors="replace")
    return p.wait(timeout=60), h.hexdigest(), n, err


def test_large_output_byte_exact(c):
    start(c)
    n = 64 * 1024 * 1024 + 12345  # not a multiple of any buffer or record size
    want = hashlib.sha256(subprocess.run(["sh", "-c", GEN % n], capture_output=True,
                                         check=True).stdout).hexdigest()
    job = submit(c, GEN % n, output_limit="256M")
    t0 = time.monotonic()
    rc, out, err = logs(c, job, "web-1/run")
    secs = time.monotonic() - t0
    assert rc == 0 and err == "", (rc, err)
    assert len(out) == n and hashlib.sha256(out).hexdigest() == want, len(out)
    print("  %d bytes byte-exact in %.1fs" % (n, secs))
    # a slow reader behind a non-blocking pipe: every byte still arrives, in order
    rc, got, size, err = logs_to_nonblocking_pipe(c, job, "web-1/run")
    assert rc == 0 and err == "", (rc, err)
    assert size == n and got == want, (size, n)


def test_follow_from_before_the_start(c):
    # `muster logs -f` right after submitting: the task has not started yet (the one before it
    # sleeps); the command waits for it and prints all of its output as it is written
    start(c)
    part = 3 * 1024 * 1024 + 7
    tasks = [{"name": "first", "shell": {"script": "sleep 1"}},
             {"name": "second",
              "shell": {"script": "for i in 1 2 3; do %s; sleep 0.3; done" % (GEN % part)}}]
    path = os.path.join(c.workdir, "follow.json")
    with open(path, "w") as f:
        json.dump({"name": "follow", "target": {"hosts": ["web-1"]}, "tasks": tasks}, f)
    job = c.cli("submit", path, "--detach")[1].strip()
    rc, out, err = logs(c, "-f", job, "web-1/second")
    want = subprocess.run(["sh", "-c", GEN % part], capture_output=True, check=True).stdout * 3
    assert rc == 0 and err == "", (rc, err)
    assert len(out) == len(want) and out == want, (len(out), len(want))
    assert "serving the control plane's tail" not in c.musterd.text()


def gaps(err, what):
    """The (first, last) bytes of every gap the notes name, e.g. what='of stdout were dropped'."""
    found = [(int(a), int(b)) for a, b in re.findall(r"bytes (\d+)\.\.(\d+) %s" % what, err)]
    assert found, err
    return found


def test_missing_output_is_reported(c):
    # a 1 MiB spool: a running attempt that writes 3 MB cannot keep it all (what it keeps
    # depends on the chunks the pipe gave: a small one may still fit after a drop)
    start(c, "--output-spool-size", "1M")
    job = submit(c, "head -c 3000000 /dev/zero")
    rc, out, err = logs(c, job, "web-1/run")
    assert rc == 1, (rc, len(out), err)
    dropped = gaps(err, "of stdout were dropped by agent web-1's output spool")
    # what came and what is said to be missing make up the whole output, exactly
    assert dropped[0][0] > 0 and dropped[-1][1] < 3000000, (dropped, err)
    assert len(out) + sum(b - a + 1 for a, b in dropped) == 3000000, (len(out), dropped)
    assert out == b"\0" * len(out)
    assert "--allow-partial" in err, err
    rc, out2, err = logs(c, "--allow-partial", job, "web-1/run")
    assert rc == 0 and out2 == out and "of stdout were dropped" in err, (rc, err)
    # -o json: the gaps as structured chunks
    rc, js, _ = logs(c, "-o", "json", job, "web-1/run")
    found = [json.loads(l)["gap"] for l in js.decode().splitlines() if json.loads(l)["gap"]]
    assert rc == 1 and len(found) == len(dropped), (rc, found)
    assert all(g["stream"] == "STDOUT" and g["reason"] == "DROPPED" for g in found), found
    assert [(int(g["start"]), int(g["end"]) - 1) for g in found] == dropped, found

    # past the task's output limit: the output says where it was cut
    job = submit(c, "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2",
                 output_limit="256K")
    rc, out, err = logs(c, job, "web-1/run")
    assert rc == 1 and len(out) == 256 * 1024, (rc, len(out), err)
    cut = gaps(err, r"of the output \(stdout and stderr together\) were truncated")
    assert cut == [(256 * 1024, 500000 - 1)], (cut, err)
    rc, _, err = logs(c, "--allow-partial", job, "web-1/run")
    assert rc == 0 and "truncated at the task's output limit" in err, err

    # a complete output is not a gap: no note, exit 0
    job = submit(c, "echo fine")
    assert logs(c, job, "web-1/run") == (0, b"fine\n", "")


if __name__ == "__main__":
    main([
        test_large_output_byte_exact,
        test_follow_from_before_the_start,
        test_missing_output_is_reported,
    ])
