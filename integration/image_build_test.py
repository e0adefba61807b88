"""End-to-end: `muster image build --on` through real musterd and a real agent.

The operator's story: from a laptop, build an image on a fleet host (the context goes there as
a signed bundle; the build runs as a one-task job with the agent's output streamed back),
push it to the registry, and run it as a container task on that host straight from its store
(nothing downloaded); an unsigned context is refused by the control plane; a Musterfile error
fails the job naming the line.

argv: MUSTERD AGENT CLI PLUGIN_SO MUSTER_CONTAINER MUSTER_IMAGE_BUILD REGFIXTURE_PY
"""
import json
import os
import shutil
import sys
import tempfile

from harness import main, wait_until

PLUGIN_SO, HELPER, BUILDER, FIXTURE = (os.path.abspath(p) for p in sys.argv[4:8])
del sys.argv[4:]
sys.path.insert(0, os.path.dirname(FIXTURE))
import regfixture as rf  # noqa: E402

MUSTERFILE = """FROM {base}
COPY greeting.txt /greeting.txt
RUN echo "built on $(hostname)" > /built.txt
USER app
ENTRYPOINT ["/bin/cat", "/greeting.txt", "/built.txt"]
"""


def can_run(name):
    if os.geteuid() != 0 or shutil.which("docker-registry") is None or not os.path.exists(rf.BUSYBOX):
        print("SKIP %s: needs root, docker-registry and busybox-static (scripts/setup)" % name)
        return False
    return True


def setup(c, reg):
    plugins = tempfile.mkdtemp(prefix="ctr-plugins.", dir=c.workdir)
    os.symlink(PLUGIN_SO, os.path.join(plugins, "libmuster_container.so"))
    os.symlink(HELPER, os.path.join(plugins, "muster-container"))
    os.symlink(os.path.join(plugins, "libmuster_container.so"), os.path.join(c.workdir, "plugins-dir"))
    store = os.path.join(c.workdir, "images")
    os.environ["MUSTER_CONTAINER_STORE"] = store
    os.environ["MUSTER_CONTAINER_INSECURE_REGISTRIES"] = reg.host
    os.environ.pop("MUSTER_CONTAINER_HELPER", None)
    c.cli("keygen", "--out", os.path.join(c.workdir, "team"))
    c.start_musterd()
    c.start_agent("box-1", "role=builder", "--heartbeat-interval", "300ms", "--trust-key",
                  os.path.join(c.workdir, "team.pub"), plugin_dir=plugins)
    wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
    return store


def test_build_on_agent_then_run(c):
    if not can_run("test_build_on_agent_then_run"):
        return
    reg = rf.Registry()
    try:
        reg.push_image("base/bb", "1", [rf.busybox_layer()], {"Cmd": ["/bin/sh"]})
        store = setup(c, reg)
        ctx = os.path.join(c.workdir, "ctx")
        os.makedirs(ctx)
        with open(os.path.join(ctx, "Musterfile"), "w") as f:
            f.write(MUSTERFILE.format(base="%s/base/bb:1" % reg.host))
        with open(os.path.join(ctx, "greeting.txt"), "w") as f:
            f.write("hello from a remote build\n")
        tag = "%s/t/remote:1" % reg.host
        key = os.path.join(c.workdir, "team.key")
        build = ["image", "build", ctx, "-t", tag, "--on", "role=builder", "--builder", BUILDER, "--store", store,
                 "--insecure", "--push", "--timeout", "120s", "-f", os.path.join(ctx, "Musterfile")]
        # unsigned: refused by musterd, saying how to sign
        rc, out, err = c.cli(*build, check=False, timeout=120)
        assert rc == 2 and "--sign-key" in err, (rc, out, err)
        rc, out, err = c.cli(*(build + ["--sign-key", key]), check=False, timeout=180)
        assert rc == 0, (out, err)
        assert "STEP 3/5: RUN" in out and "pushed %s@sha256:" % tag in out, out
        rc, out2, _ = c.cli("bundle", "ls")
        assert "build-" not in out2, out2  # the context bundle is removed once the job ended
        # the image is in the agent's store: a container task runs it with pull_policy never
        job = os.path.join(c.workdir, "run.yaml")
        with open(job, "w") as f:
            f.write('name: run-built\ntarget: {hosts: [box-1]}\ntasks:\n  - name: app\n    type: container\n'
                    '    container: {image: "%s", pull_policy: never}\n' % tag)
        rc, out, err = c.cli("submit", job, check=False, timeout=120)
        assert rc == 0, (out, err)
        assert "hello from a remote build" in out and "built on build" in out, out
        # another agent with an empty store of its own pulls the pushed image from the registry
        os.environ["MUSTER_CONTAINER_STORE"] = os.path.join(c.workdir, "images-2")
        c.start_agent("box-2", "role=runner", "--heartbeat-interval", "300ms",
                      plugin_dir=os.path.dirname(os.readlink(os.path.join(c.workdir, "plugins-dir"))))
        os.environ["MUSTER_CONTAINER_STORE"] = store
        wait_until("box-2 to connect", lambda: c.states().get("box-2") == "AGENT_CONNECTED")
        job2 = os.path.join(c.workdir, "run2.yaml")
        with open(job2, "w") as f:
            f.write('name: run-pulled\ntarget: {hosts: [box-2]}\ntasks:\n  - name: app\n    type: container\n'
                    '    container: {image: "%s"}\n' % tag)
        rc, out, err = c.cli("submit", job2, check=False, timeout=120)
        assert rc == 0 and "hello from a remote build" in out, (out, err)
        assert os.path.isdir(os.path.join(c.workdir, "images-2", "blobs")), "box-2 pulled into its own store"
        # a Musterfile error fails the job with the line
        with open(os.path.join(ctx, "Musterfile"), "a") as f:
            f.write("VOLUME /data\n")
        rc, out, err = c.cli(*(build + ["--sign-key", key]), check=False, timeout=180)
        assert rc == 1, (rc, out, err)
        assert "line 6: VOLUME is not supported" in out + err, (out, err)
        # --network host on an agent: only where the cluster image policy allows host network
        policy = os.path.join(c.workdir, "policy.yaml")
        with open(policy, "w") as f:
            f.write("allow_host_network: false\n")
        c.cli("policy", "set", policy)
        rc, out, err = c.cli(*(build + ["--sign-key", key, "--network", "host"]), check=False, timeout=60)
        assert rc == 2 and "refused by the cluster image policy" in err and "allow_host_network" in err, (rc, err)
        rc, out2, _ = c.cli("bundle", "ls")
        assert "build-" not in out2, out2  # refused before anything was sent
    finally:
        reg.close()


if __name__ == "__main__":
    main([test_build_on_agent_then_run])
