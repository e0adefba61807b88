"""`muster image build` figures (prints them; never passes or fails on them): a 5-step image
(COPY, RUN, ENV, RUN, CMD on a busybox-static base from a loopback docker-registry) built
cold (empty layer cache, the base already in the store) and fully cached, against
`buildah bud --layers` of the same Dockerfile in the same run (its own storage under a temp
dir, the base pulled beforehand; cold = --no-cache). Median and max of N runs.
Needs root. argv: MUSTER_IMAGE_BUILD [RUNS=5]"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
for d in (os.path.join(HERE, "..", "plugins", "container"), os.path.join(os.getcwd(), "plugins", "container")):
    sys.path.insert(0, d)
import regfixture as rf  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

DOCKERFILE = """FROM {base}
COPY app/ /app/
RUN cp /app/a.txt /b.txt && echo built > /built.txt
ENV MODE=bench
RUN rm /etc/group && mkdir /data
CMD ["/bin/sh", "/app/run.sh"]
"""


def push_base(reg):
    """busybox with a config history (buildah checks one entry per layer)."""
    raw = rf.busybox_layer()
    blob, mt = rf.compress(raw, "gzip")
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [rf.sha(raw)]},
                      "history": [{"created_by": "busybox-static"}]}).encode()
    man = {"schemaVersion": 2, "mediaType": rf.OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": reg.push_blob("base/bb", cfg),
                      "size": len(cfg)},
           "layers": [{"mediaType": mt, "digest": reg.push_blob("base/bb", blob), "size": len(blob)}]}
    reg.push_manifest("base/bb", "1", man, rf.OCI_MANIFEST)
    return "%s/base/bb:1" % reg.host


def timed(argv, runs, before=None):
    xs, last = [], None
    for _ in range(runs):
        if before:
            before()
        t = time.perf_counter()
        last = subprocess.run(argv, capture_output=True, text=True)
        xs.append((time.perf_counter() - t) * 1000)
        if last.returncode != 0:
            return None, last
    return (statistics.median(xs), max(xs)), last


def fmt(r):
    return "%.1f / %.1f ms" % r if r else "failed"


def main():
    tmp = tempfile.mkdtemp(prefix="build-bench.")
    reg = rf.Registry()
    try:
        base = push_base(reg)
        ctx = os.path.join(tmp, "ctx")
        os.makedirs(os.path.join(ctx, "app"))
        for name, data in (("a.txt", "hello\n" * 1000), ("run.sh", "cat /b.txt\n")):
            with open(os.path.join(ctx, "app", name), "w") as f:
                f.write(data)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(DOCKERFILE.format(base=base))
        store = os.path.join(tmp, "store")
        tag = "%s/bench/app:1" % reg.host
        mb = [BUILD, "--store", store, "--insecure", "-t", tag, ctx]
        first = subprocess.run(mb, capture_output=True, text=True)  # pulls the base once
        if first.returncode != 0:
            print("muster-image-build failed:\n%s%s" % (first.stdout, first.stderr))
            return 1
        cold, _ = timed(mb[:1] + ["--no-cache"] + mb[1:], RUNS)
        warm, out = timed(mb, RUNS)
        cached_line = [l for l in out.stdout.splitlines() if l.startswith("image ")][0]
        print("muster image build, 5 steps: cold (no cache) median / max of %d: %s" % (RUNS, fmt(cold)))
        print("muster image build, 5 steps: fully cached median / max of %d: %s   (%s)" % (RUNS, fmt(warm), cached_line))

        if shutil.which("buildah") is None:
            print("buildah: not installed (scripts/setup installs it)")
            return 0
        broot = ["buildah", "--root", os.path.join(tmp, "broot"), "--runroot", os.path.join(tmp, "brun"),
                 "--storage-driver", "overlay"]
        p = subprocess.run(broot + ["pull", "--tls-verify=false", base], capture_output=True, text=True)
        if p.returncode != 0:
            print("buildah pull failed, rc %d:\n%s%s" % (p.returncode, p.stdout, p.stderr))
            return 0
        bud = broot + ["bud", "--tls-verify=false", "--layers", "-t", "bench:1", ctx]
        bcold, out = timed(bud[:-1] + ["--no-cache", ctx], RUNS)
        if bcold is None:
            print("buildah bud failed, rc %d:\n%s%s" % (out.returncode, out.stdout[-2000:], out.stderr[-2000:]))
            return 0
        bwarm, out = timed(bud, RUNS)
        print("buildah bud --layers, same Dockerfile: cold (--no-cache) median / max of %d: %s" % (RUNS, fmt(bcold)))
        print("buildah bud --layers, same Dockerfile: cached median / max of %d: %s" % (RUNS, fmt(bwarm)))
    finally:
        reg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
