"""Container task figures (prints them; never passes or fails on them):
- warm start: `muster-container run` of /bin/true from an image already in the store, vs the
  same program forked directly (`/bin/true`) and vs `runc run` of the same rootfs (and podman
  when installed), median and p90 of N runs;
- cold pull + unpack of a SIZE MiB image from a loopback docker-registry, vs
  `skopeo copy` + `umoci unpack` of the same image;
- dedup: a second image sharing the big layer: bytes downloaded.
Needs root. argv: MUSTER_CONTAINER [SIZE_MIB=200] [RUNS=20]"""
import json
import random
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import regfixture as rf  # noqa: E402

HELPER = os.path.abspath(sys.argv[1])
SIZE = int(sys.argv[2]) if len(sys.argv) > 2 else 200
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 20


def timed(fn, runs):
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1000)
    xs.sort()
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1]


def main():
    tmp = tempfile.mkdtemp(prefix="ctr-bench.")
    reg = rf.Registry()
    try:
        store = os.path.join(tmp, "store")
        reg.push_image("b/small", "1", [rf.busybox_layer()], {"Cmd": ["/bin/true"]})
        image = reg.host + "/b/small:1"
        out = subprocess.run([HELPER, "pull", "--store", store, "--insecure", image], capture_output=True, text=True,
                             check=True).stdout.split()
        rootfs = out[1]
        state = os.path.join(tmp, "state")

        def ours(helper=HELPER, shim=False):
            os.makedirs(state, exist_ok=True)
            cfg = os.path.join(tmp, "c.json")
            conf = {"store": store, "image": image, "insecure": True, "state_dir": state, "command": ["/bin/true"]}
            if shim:  # as the plugin runs a task without secrets: the output relayed by a shim
                conf.update(watch_pid=os.getpid(), shim_dir=os.path.join(state, ".shim"))
            with open(cfg, "w") as f:
                json.dump(conf, f)
            subprocess.run([helper, "run", cfg], check=True)
            shutil.rmtree(state)

        def plain():
            subprocess.run(["/bin/true"], check=True)

        # interleaved, one run of each per round, so the (shared, busy) machine's load weighs on
        # all alike; muster-container-full is the launcher as it was before the lite split
        runners = [("fork+exec /bin/true", plain), ("muster-container run", ours),
                   ("muster-container run (shim)", lambda: ours(shim=True)),
                   ("muster-container-full run", lambda: ours(HELPER + "-full"))]
        if shutil.which("runc"):
            bundle = os.path.join(tmp, "bundle")
            os.makedirs(bundle)
            subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
            with open(os.path.join(bundle, "config.json")) as f:
                spec = json.load(f)
            spec["root"] = {"path": rf.image_view(rootfs, tmp), "readonly": True}
            spec["process"].update({"terminal": False, "args": ["/bin/true"]})
            with open(os.path.join(bundle, "config.json"), "w") as f:
                json.dump(spec, f)

            def runc():
                subprocess.run(["runc", "--root", os.path.join(tmp, "runc"), "run", "--bundle", bundle, "b%d" % os.getpid()],
                               check=True)
            runners.append(("runc run", runc))
        times = {name: [] for name, _ in runners}
        for _ in range(RUNS):
            # in a new order each round: a container's mount teardown (a child of the helper,
            # after it exited) overlaps whatever runs next, so a fixed order would bill one
            # row for another's teardown
            for name, fn in random.sample(runners, len(runners)):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000)
        print("warm start, %d runs each, interleaved (median / p90 ms; load average %.1f):" % (RUNS, os.getloadavg()[0]))
        for name, _ in runners:
            xs = sorted(times[name])
            print("  %-28s %7.1f / %7.1f" % (name, statistics.median(xs), xs[int(len(xs) * 0.9) - 1]))
        if shutil.which("podman"):
            def podman():
                subprocess.run(["podman", "--runtime", "runc", "run", "--rm", "--network", "none", "--ulimit", "nofile=20000:20000",
                                "--ulimit", "nproc=32768:32768", "--tls-verify=false", image, "/bin/true"], check=True,
                               capture_output=True)
            m, p = timed(podman, max(3, RUNS // 4))
            print("  %-28s %7.1f / %7.1f" % ("podman --runtime runc run", m, p))
        else:
            print("  podman: not installed (not in scripts/setup), not measured")

        # cold pull + unpack
        print("building a %d MiB image (4 layers of incompressible files)..." % SIZE)
        layers = []
        per = SIZE // 4
        for i in range(4):
            lay = rf.Layer().dir("data%d" % i)
            for j in range(per):
                lay.file("data%d/f%d" % (i, j), os.urandom(1 << 20))
            layers.append(lay.raw())
        reg.push_image("b/big", "1", layers, {"Cmd": ["/bin/true"]})
        big = reg.host + "/b/big:1"
        cold = os.path.join(tmp, "cold")
        t = time.perf_counter()
        out = subprocess.run([HELPER, "pull", "--store", cold, "--insecure", big], capture_output=True, text=True,
                             check=True).stdout.split()
        ours_s = time.perf_counter() - t
        nbytes = int(out[3])
        print("cold pull + unpack, %.1f MiB downloaded:" % (nbytes / 2**20))
        print("  %-28s %7.2f s  %7.1f MiB/s" % ("muster-container pull", ours_s, nbytes / 2**20 / ours_s))
        if shutil.which("skopeo") and shutil.which("umoci"):
            layout = os.path.join(tmp, "layout")
            t = time.perf_counter()
            subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + big, "oci:" + layout + ":big"],
                           check=True)
            subprocess.run(["umoci", "unpack", "--image", layout + ":big", os.path.join(tmp, "umoci-bundle")], check=True,
                           capture_output=True)
            ref_s = time.perf_counter() - t
            print("  %-28s %7.2f s  %7.1f MiB/s   (ours %.2fx)" % ("skopeo copy + umoci unpack", ref_s, nbytes / 2**20 / ref_s,
                                                                    ref_s / ours_s))
        # dedup
        def layer_dirs():
            d = os.path.join(cold, "layers")
            return set(n for n in os.listdir(d) if not n.endswith(".bytes")) if os.path.isdir(d) else set()
        before = layer_dirs()
        reg.push_image("b/big2", "1", layers[:3] + [rf.Layer().file("extra", "x").raw()], {"Cmd": ["/bin/true"]})
        out = subprocess.run([HELPER, "pull", "--store", cold, "--insecure", reg.host + "/b/big2:1"], capture_output=True,
                             text=True, check=True).stdout.split()
        print("dedup: a second image sharing 3 of 4 layers downloaded %s layer(s), %s bytes; unpacked %d layer dir(s)"
              % (out[2], out[3], len(layer_dirs() - before)))
    finally:
        rf.unmount_views()
        reg.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
