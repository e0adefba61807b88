"""End-to-end: an agent that requires signed images (MUSTER_CONTAINER_REQUIRE_SIGNED, the
container plugin's container.require_signed) through real musterd, a real agent and a real
loopback docker-registry (plugins/container/regfixture.py).

The operator's story: sign an image with `muster image sign`, check it with `muster image
verify`; a job runs the signed image on a host that requires signatures, and says who signed
it; a job with an unsigned image, or with another image's signature attached, fails with the
reason, and the registry never served a layer of it. The cluster's admission policy
(`muster policy set` with require_signed) is checked by the same verifier.

argv: MUSTERD AGENT CLI PLUGIN_SO MUSTER_CONTAINER REGFIXTURE_PY
"""
import json
import os
import shutil
import sys
import tempfile

from harness import main, wait_until

PLUGIN_SO, HELPER, FIXTURE = (os.path.abspath(p) for p in sys.argv[4:7])
sys.path.insert(0, os.path.dirname(FIXTURE))
import regfixture as rf  # noqa: E402


def can_run(name):
    if os.geteuid() != 0 or shutil.which("docker-registry") is None or not os.path.exists(rf.BUSYBOX):
        print("SKIP %s: needs root, docker-registry and busybox-static (scripts/setup)" % name)
        return False
    return True


def submit(c, yaml_text):
    path = os.path.join(c.workdir, "job-%d.yaml" % len(os.listdir(c.workdir)))
    with open(path, "w") as f:
        f.write(yaml_text)
    rc, out, err = c.cli("-o", "json", "submit", path, check=False, timeout=120)
    runs = [json.loads(l) for l in out.splitlines() if "taskId" in l]
    return rc, runs, err


def run_image(c, name, image):
    """A one-task job running image on box-1: (exit code, the task's last run, stderr)."""
    rc, runs, err = submit(c, 'name: %s\ntarget: {hosts: [box-1]}\ntasks:\n'
                              '  - {name: hello, type: container, container: {image: "%s"}}\n' % (name, image))
    return rc, runs[-1] if runs else {}, err


def test_require_signed(c):
    if not can_run("test_require_signed"):
        return
    reg = rf.Registry(access_log=True)
    try:
        signed, _ = rf.push_run_image(reg, "t/signed", "1")
        unsigned_layer = rf.busybox_layer(lambda l: l.file("hello.txt", "not signed\n"))
        unsigned, _ = reg.push_image("t/unsigned", "1", [unsigned_layer], rf.run_image_config())
        keys = tempfile.mkdtemp(prefix="keys.", dir=c.workdir)
        c.cli("keygen", "--out", os.path.join(keys, "release"))
        c.cli("keygen", "--out", os.path.join(keys, "other"))
        rc, out, err = c.cli("image", "sign", "%s/t/signed:1" % reg.host, "--key", os.path.join(keys, "release.key"),
                             "--insecure", "--expires", "1h")
        assert "signed %s/t/signed@%s" % (reg.host, signed) in out and "fallback tag" in out, (out, err)
        rc, out, err = c.cli("image", "verify", "%s/t/signed:1" % reg.host, "--pub",
                             os.path.join(keys, "release.pub"), "--insecure")
        assert "signed by key" in out, (out, err)
        # another image carries the signed image's signature artifact under its own fallback tag
        tampered, _ = reg.push_image("t/signed", "2", [unsigned_layer], rf.run_image_config())
        art = reg._req("GET", "/v2/t/signed/manifests/sha256-%s.sig" % signed.split(":")[1],
                       headers={"Accept": rf.OCI_MANIFEST}).read()
        reg.push_manifest("t/signed", "sha256-%s.sig" % tampered.split(":")[1], art, rf.OCI_MANIFEST)

        plugins = tempfile.mkdtemp(prefix="ctr-plugins.", dir=c.workdir)
        os.symlink(PLUGIN_SO, os.path.join(plugins, "libmuster_container.so"))
        os.symlink(HELPER, os.path.join(plugins, "muster-container"))
        os.environ.update(MUSTER_CONTAINER_STORE=os.path.join(c.workdir, "images"),
                          MUSTER_CONTAINER_INSECURE_REGISTRIES=reg.host)
        os.environ.pop("MUSTER_CONTAINER_HELPER", None)
        # agent.yaml's container_require_signed / container_signature_keys (the agent checks the
        # keys at start and hands both to the plugin)
        agent_yaml = os.path.join(c.workdir, "agent-signed.yaml")
        with open(agent_yaml, "w") as f:
            f.write("container_require_signed: true\ncontainer_signature_keys: [%s]\n"
                    % os.path.join(keys, "release.pub"))
        c.start_musterd()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", "--config", agent_yaml,
                      plugin_dir=plugins)
        wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")

        rc, run, err = run_image(c, "signed", "%s/t/signed:1" % reg.host)
        assert rc == 0 and run["state"] == "SUCCEEDED", (run, err)
        assert run["outputTail"] == "hello from the image\n", run
        assert run["outputParams"]["image_signed_by"] == open(os.path.join(keys, "release.pub")).read().split()[2], run
        assert run["outputParams"]["image_digest"] == signed, run
        # the store records the tag it resolved, as for any pull (`muster images`)
        rc, out, err = c.cli("-o", "json", "images")
        imgs = [i for a in map(json.loads, out.splitlines()) for i in a.get("images", [])]
        assert [i["refs"] for i in imgs if i["digest"] == signed] == [["%s/t/signed:1" % reg.host]], imgs

        # an unsigned image, and one with another image's signature: refused before any layer
        for image, needle in (("t/unsigned:1", "image refused (unsigned)"),
                              ("t/signed:2", "image refused (wrong-digest)")):
            before = set(reg.blob_gets(image.split(":")[0]))
            rc, run, err = run_image(c, "refused", "%s/%s" % (reg.host, image))
            assert rc != 0 and run["state"] == "FAILED", (run, err)
            assert needle in run["message"], run
            after = set(reg.blob_gets(image.split(":")[0]))
            layer = rf.sha(rf.compress(unsigned_layer, "gzip")[0])
            assert layer not in after - before and layer not in after, (image, after)

        # the image is in the agent's store now, but every start checks the registry again: with
        # its signature deleted there, it no longer runs
        art_digest = rf.sha(art)
        reg._req("DELETE", "/v2/t/signed/manifests/" + art_digest)
        rc, run, err = run_image(c, "revoked", "%s/t/signed:1" % reg.host)
        assert rc != 0 and "image refused (unsigned)" in run["message"], run
        assert "hello from the image" not in run.get("outputTail", ""), run

        # an image from the task's bundle carries no registry signature: refused at assign
        rc, run, err = run_image(c, "bundled", "oci-layout:img")
        text = json.dumps(run) + err
        assert rc != 0 and "requires signed images" in text, text
    finally:
        for k in ("MUSTER_CONTAINER_REQUIRE_SIGNED", "MUSTER_CONTAINER_SIGNATURE_KEYS"):
            os.environ.pop(k, None)
        reg.close()


def test_cluster_policy_require_signed(c):
    """`muster policy set` with require_signed: the agent's helper checks signatures with the
    same verifier (the agent's MUSTER_CONTAINER_SIGNATURE_KEYS, narrowed by trusted_keys to the
    key named ops-2026); the unsigned image is refused naming the rule, the signed one runs."""
    if not can_run("test_cluster_policy_require_signed"):
        return
    reg = rf.Registry(access_log=True)
    try:
        rf.push_run_image(reg, "t/signed", "1")
        unsigned_layer = rf.busybox_layer(lambda l: l.file("hello.txt", "not signed\n"))
        reg.push_image("t/unsigned", "1", [unsigned_layer], rf.run_image_config())
        keys = tempfile.mkdtemp(prefix="keys.", dir=c.workdir)
        c.cli("keygen", "--out", os.path.join(keys, "ops-2026"))
        c.cli("image", "sign", "%s/t/signed:1" % reg.host, "--key", os.path.join(keys, "ops-2026.key"), "--insecure")
        plugins = tempfile.mkdtemp(prefix="ctr-plugins.", dir=c.workdir)
        os.symlink(PLUGIN_SO, os.path.join(plugins, "libmuster_container.so"))
        os.symlink(HELPER, os.path.join(plugins, "muster-container"))
        os.environ.update(MUSTER_CONTAINER_STORE=os.path.join(c.workdir, "images"),
                          MUSTER_CONTAINER_INSECURE_REGISTRIES=reg.host,
                          MUSTER_CONTAINER_SIGNATURE_KEYS=os.path.join(keys, "ops-2026.pub"))
        os.environ.pop("MUSTER_CONTAINER_HELPER", None)
        os.environ.pop("MUSTER_CONTAINER_REQUIRE_SIGNED", None)
        c.start_musterd()
        c.start_agent("box-1", "role=ctr", "--heartbeat-interval", "300ms", plugin_dir=plugins)
        wait_until("the agent to connect", lambda: c.states().get("box-1") == "AGENT_CONNECTED")
        policy = os.path.join(c.workdir, "policy.yaml")
        with open(policy, "w") as f:
            f.write("require_signed: true\ntrusted_keys: [ops-2026]\n")
        c.cli("policy", "set", policy)

        def refused():
            rc, run, err = run_image(c, "unsigned", "%s/t/unsigned:1" % reg.host)
            return rc != 0 and "require_signed: no signature for" in run.get("message", "") and run
        run = wait_until("the pushed policy to refuse the unsigned image", refused, timeout=30)
        assert "refused by the admission policy" in run["message"], run
        layer = rf.sha(rf.compress(unsigned_layer, "gzip")[0])
        assert layer not in reg.blob_gets("t/unsigned"), reg.blob_gets("t/unsigned")
        rc, run, err = run_image(c, "signed", "%s/t/signed:1" % reg.host)
        assert rc == 0 and run["outputTail"] == "hello from the image\n", (run, err)
        # muster policy test --pub checks the signature as the agent does
        pub = os.path.join(keys, "ops-2026.pub")
        rc, out, err = c.cli("policy", "test", "%s/t/signed:1" % reg.host, "--insecure", "--pub", pub, check=False)
        assert rc == 0 and "signature valid" in out and "ALLOWED" in out, (rc, out, err)
        rc, out, err = c.cli("policy", "test", "%s/t/unsigned:1" % reg.host, "--insecure", "--pub", pub, check=False)
        assert rc == 1 and "signature missing" in out and "REFUSED" in out, (rc, out, err)
        rc, out, err = c.cli("policy", "test", "%s/t/signed:1" % reg.host, "--insecure", check=False)
        assert rc == 1 and "REFUSED" in out, (rc, out, err)  # not checked: require_signed refuses
    finally:
        os.environ.pop("MUSTER_CONTAINER_SIGNATURE_KEYS", None)
        reg.close()


def test_require_signed_config_refused(c):
    """container_require_signed without container_signature_keys, or with a key file that does
    not load, stops the agent at start naming the key (exit 2), rather than refusing every image."""
    import subprocess
    bad_key = os.path.join(c.workdir, "not-a-key.pub")
    with open(bad_key, "w") as f:
        f.write("not a key\n")
    for body, needle in (("container_require_signed: true\n", "container_require_signed: no container_signature_keys"),
                         ("container_signature_keys: [%s]\n" % bad_key, "container_signature_keys")):
        cfg = os.path.join(c.workdir, "agent-bad.yaml")
        with open(cfg, "w") as f:
            f.write(body)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_CONTAINER_")}
        r = subprocess.run([c.agent_bin, "--config", cfg, "--control", "127.0.0.1:1", "--id", "bad-1", "--insecure",
                            "--spool-dir", os.path.join(c.workdir, "spool-bad")],
                           capture_output=True, text=True, timeout=30, env=env)
        assert r.returncode != 0 and needle in r.stderr, (r.returncode, r.stderr[-2000:])


if __name__ == "__main__":
    main([test_require_signed, test_cluster_policy_require_signed, test_require_signed_config_refused])
