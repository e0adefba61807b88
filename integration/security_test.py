"""Attacks on the transport, tried the way an attacker would: plaintext against mTLS, a
certificate from another CA, expired and not-yet-valid certificates, a revoked one, an agent
certificate on the admin API and an admin certificate on the agent stream; then the operator's
side: a renewed server certificate is served to new connections while running streams stay
up, musterd reaches etcd over mTLS, and the one plaintext path warns loudly."""
import datetime
import os
import shutil
import subprocess

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import Cluster, Proc, free_port, main, wait_until


def load_ca(c):
    ca = x509.load_pem_x509_certificate(open(c.pki.ca, "rb").read())
    key = serialization.load_pem_private_key(open(c.pki.ca_key, "rb").read(), None)
    return ca, key


def make_cert(c, kind, name, not_before, not_after, role=None, ca=None, ca_key=None):
    """A certificate made with python3-cryptography (validity windows `openssl x509` can't set),
    signed by the cluster's CA unless ca/ca_key are given. Returns (crt, key) paths."""
    if ca is None:
        ca, ca_key = load_ca(c)
    key = ec.generate_private_key(ec.SECP256R1())
    uris = [x509.UniformResourceIdentifier("muster://%s/%s" % (kind, name))]
    if role:
        uris.append(x509.UniformResourceIdentifier("muster://role/" + role))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(uris), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    prefix = os.path.join(c.pki.dir, "py-%s-%s-%d" % (kind, name, cert.serial_number % 100000))
    with open(prefix + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(prefix + ".key", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return prefix + ".crt", prefix + ".key"


def cli_with(c, crt, key, *args, ca=None):
    env = dict(os.environ, MUSTER_CA=ca or c.pki.ca, MUSTER_CERT=crt, MUSTER_KEY=key)
    r = subprocess.run([c.cli_bin, "--addr", c.addr] + list(args), capture_output=True, text=True,
                       timeout=30, env=env)
    return r.returncode, r.stdout, r.stderr


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def test_plaintext_and_foreign_ca_refused(c):
    c.start_musterd()
    # plaintext client: no TLS at all
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSTER_")}
    r = subprocess.run([c.cli_bin, "--addr", c.addr, "agents"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 1 and "UNAVAILABLE" in r.stderr and "--ca" in r.stderr, r.stderr
    ch = grpc.insecure_channel(c.addr)
    try:
        ch.unary_unary("/muster.v1.Admin/ListAgents")(b"", timeout=5)
        raise AssertionError("plaintext call answered")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()
    ch.close()
    # an admin certificate from another CA
    other = make_other_ca(c)
    crt, key = make_cert(c, "admin", "mallory", now() - datetime.timedelta(hours=1),
                         now() + datetime.timedelta(days=1), role="admin", ca=other[0],
                         ca_key=other[1])
    rc, out, err = cli_with(c, crt, key, "agents")
    assert rc == 1 and "UNAVAILABLE" in err, (rc, out, err)
    assert "mallory" not in c.musterd.text() or "denied" not in c.musterd.text()


def make_other_ca(c):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now() - datetime.timedelta(days=1))
            .not_valid_after(now() + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def test_expired_and_not_yet_valid_refused(c):
    c.start_musterd()
    day = datetime.timedelta(days=1)
    for what, nb, na in (("expired", now() - 10 * day, now() - day),
                         ("not yet valid", now() + day, now() + 10 * day)):
        crt, key = make_cert(c, "admin", "alice", nb, na, role="admin")
        rc, out, err = cli_with(c, crt, key, "agents")
        assert rc == 1 and "UNAVAILABLE" in err, (what, rc, out, err)
    # the same identity with a valid certificate works
    crt, key = make_cert(c, "admin", "alice", now() - day, now() + day, role="admin")
    rc, out, err = cli_with(c, crt, key, "cluster")
    assert rc == 0 and "admin cert alice (admin)" in out, (out, err)


def test_certificate_kinds_stay_in_their_lane(c):
    c.start_musterd()
    c.start_agent("web-1", "role=web")
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    # an agent certificate on the admin API
    crt, key = c.pki.issue("agent", "web-1")
    rc, out, err = cli_with(c, crt, key, "run", "--all", "--", "id")
    assert rc != 0 and "PERMISSION_DENIED" in err and "cannot call the admin API" in err, err
    # an admin certificate opening an agent stream
    ch = c.grpc_channel("admin", "test-admin")
    connect = ch.stream_stream("/muster.v1.AgentGateway/Connect", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    try:
        for _ in connect(iter([b"\x0a\x07\x0a\x05web-9"]), timeout=5):
            pass
        raise AssertionError("an admin certificate opened an agent stream")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.code()
        assert "needs an agent certificate" in e.details(), e.details()
    ch.close()
    assert c.states() == {"web-1": "AGENT_CONNECTED"}, c.states()
    # the real agent restarting takes its stream back at once (no lock-out)
    c.agents["web-1"].kill()
    c.start_agent("web-1", "role=web")
    wait_until("web-1 back", lambda: c.states().get("web-1") == "AGENT_CONNECTED", timeout=10)


def server_serial(c):
    """The serial of the certificate musterd presents to a new connection."""
    crt, key = c.pki.issue("admin", "test-admin", role="admin")
    s = subprocess.run(["openssl", "s_client", "-connect", c.addr, "-CAfile", c.pki.ca,
                        "-cert", crt, "-key", key], input="", capture_output=True, text=True,
                       timeout=10)
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=s.stdout,
                       capture_output=True, text=True)
    return x.stdout.strip()


def test_server_certificate_reload(c):
    tls = c.server_tls("musterd")
    served_crt, served_key = os.path.join(c.workdir, "served.crt"), os.path.join(c.workdir, "served.key")
    shutil.copy(tls[3], served_crt)
    shutil.copy(tls[5], served_key)
    c.server_tls = lambda name="musterd": ["--tls-ca", c.pki.ca, "--tls-cert", served_crt,
                                           "--tls-key", served_key]
    c.start_musterd()
    c.start_agent("web-1", "role=web")
    wait_until("web-1 connected", lambda: c.states().get("web-1") == "AGENT_CONNECTED")
    since = c.agents_json()["web-1"]["connectedAtMs"]
    before = server_serial(c)
    assert before.startswith("serial="), before
    # the operator renews the certificate on disk
    new_crt, new_key = c.pki.issue("server", "musterd", days=60)
    shutil.copy(new_key, served_key + ".tmp")
    os.replace(served_key + ".tmp", served_key)
    shutil.copy(new_crt, served_crt + ".tmp")
    os.replace(served_crt + ".tmp", served_crt)
    after = wait_until("a new connection to see the new certificate",
                       lambda: (lambda s: s if s != before else None)(server_serial(c)), timeout=10)
    want = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", new_crt],
                          capture_output=True, text=True).stdout.strip()
    assert after == want, (after, want)
    # the running agent stream was never dropped
    assert c.agents_json()["web-1"]["connectedAtMs"] == since
    rc, out, _ = c.cli("run", "--all", "--", "echo still-here")
    assert rc == 0 and "still-here" in out, out
    assert "certificate files changed" in c.musterd.text()


def test_etcd_over_mtls(c):
    """etcd with --client-cert-auth: musterd reaches it with --etcd-ca/--etcd-cert/--etcd-key;
    without the client certificate it cannot."""
    ecrt, ekey = c.pki.issue("server", "etcd")
    mcrt, mkey = c.pki.issue("server", "musterd")
    port, peer = free_port(), free_port()
    url = "https://127.0.0.1:%d" % port
    etcd = Proc("etcd", ["/usr/bin/etcd", "--name", "sec", "--data-dir", os.path.join(c.workdir, "etcd"),
                         "--listen-client-urls", url, "--advertise-client-urls", url,
                         "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                         "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                         "--initial-cluster", "sec=http://127.0.0.1:%d" % peer,
                         "--cert-file", ecrt, "--key-file", ekey, "--client-cert-auth",
                         "--trusted-ca-file", c.pki.ca], c.workdir)
    try:
        etcdctl = ["etcdctl", "--endpoints", url, "--cacert", c.pki.ca, "--cert", mcrt, "--key", mkey]
        wait_until("etcd over TLS", lambda: subprocess.run(etcdctl + ["endpoint", "health"],
                                                          capture_output=True).returncode == 0,
                   timeout=20)
        c.start_musterd("--etcd-ca", c.pki.ca, "--etcd-cert", mcrt, "--etcd-key", mkey, etcd=url)
        wait_until("musterd leads", lambda: "(leader)" in c.cli("cluster", check=False)[1], timeout=15)
        c.start_agent("db-1", "role=db")
        wait_until("db-1 connected", lambda: c.states().get("db-1") == "AGENT_CONNECTED")
        rc, out, _ = c.cli("run", "--all", "--", "echo over-mtls")
        assert rc == 0 and "over-mtls" in out, out
        keys = subprocess.run(etcdctl + ["get", "--prefix", "--keys-only", "/muster/"],
                              capture_output=True, text=True).stdout
        assert "/muster/jobs/" in keys, keys
        # without a client certificate etcd refuses musterd
        assert c.musterd.stop() == 0
        other = "127.0.0.1:%d" % free_port()
        p = Proc("musterd-nocert", [c.musterd_bin, "--listen", other, "--etcd", url,
                                    "--etcd-ca", c.pki.ca, "--leader-ttl", "2s"] +
                 c.server_tls(), c.workdir)
        try:
            wait_until("musterd-nocert to report etcd down", lambda: "unavailable" in subprocess.run(
                [c.cli_bin, "--addr", other, "cluster"], capture_output=True, text=True,
                timeout=30).stdout, timeout=15)
        finally:
            p.stop()
        c.musterd = None
    finally:
        etcd.stop()


def write_crl(c, path, revoked_certs):
    """A CRL signed by the cluster's CA listing revoked_certs (paths), written atomically."""
    ca, ca_key = load_ca(c)
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now() - datetime.timedelta(minutes=1))
         .next_update(now() + datetime.timedelta(days=7)))
    for crt in revoked_certs:
        serial = x509.load_pem_x509_certificate(open(crt, "rb").read()).serial_number
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(now()).build())
    crl = b.sign(ca_key, hashes.SHA256())
    with open(path + ".tmp", "wb") as f:
        f.write(crl.public_bytes(serialization.Encoding.PEM))
    os.replace(path + ".tmp", path)


def test_revoked_certificate_refused_without_restart(c):
    crl = os.path.join(c.workdir, "ca.crl")
    write_crl(c, crl, [])
    c.start_musterd("--tls-crl", crl)
    alice = c.pki.issue("admin", "alice", role="operator")
    rc, out, err = cli_with(c, alice[0], alice[1], "cluster")
    assert rc == 0 and "alice" in out, (out, err)
    write_crl(c, crl, [alice[0]])
    def refused():
        rc, _, err = cli_with(c, alice[0], alice[1], "agents")
        return err if rc != 0 and "UNAUTHENTICATED" in err and "revoked" in err else None
    wait_until("the CRL to apply without a restart", refused, timeout=10)
    rc, _, _ = c.cli("agents")  # everyone else is untouched
    assert rc == 0
    # a CRL signed by another CA is not taken: the last good one stays
    other_key = ec.generate_private_key(ec.SECP256R1())
    bad = (x509.CertificateRevocationListBuilder()
           .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil CA")]))
           .last_update(now()).next_update(now() + datetime.timedelta(days=1))
           .sign(other_key, hashes.SHA256()))
    with open(crl + ".tmp", "wb") as f:
        f.write(bad.public_bytes(serialization.Encoding.PEM))
    os.replace(crl + ".tmp", crl)
    wait_until("the bad CRL to be refused", lambda: "not reloaded" in c.musterd.text(), timeout=10)
    assert refused()


class PlaintextCluster(Cluster):
    insecure = True


def test_insecure_is_explicit_and_loud(c):
    rc = subprocess.run([c.musterd_bin, "--listen", c.addr, "--no-etcd"], capture_output=True,
                        text=True, timeout=10)
    assert rc.returncode == 2 and "--insecure" in rc.stderr and "no TLS configured" in rc.stderr, rc
    spool = os.path.join(c.workdir, "spool")
    rc = subprocess.run([c.agent_bin, "--control", c.addr, "--id", "x", "--spool-dir", spool],
                        capture_output=True, text=True, timeout=10)
    assert rc.returncode == 2 and "--insecure" in rc.stderr, rc
    # an agent takes its id from its certificate, and refuses a different --id or another kind
    crt, key = c.pki.issue("agent", "web-7")
    admin_crt, admin_key = c.pki.issue("admin", "test-admin", role="admin")
    for cert, k, extra, want in ((crt, key, ["--id", "web-8"], "does not match the certificate"),
                                 (admin_crt, admin_key, [], "kind 'admin', not an agent's")):
        rc = subprocess.run([c.agent_bin, "--control", c.addr, "--spool-dir", spool, "--tls-ca",
                             c.pki.ca, "--tls-cert", cert, "--tls-key", k] + extra,
                            capture_output=True, text=True, timeout=10)
        assert rc.returncode == 2 and want in rc.stderr, rc
    plain = PlaintextCluster(c.musterd_bin, c.agent_bin, c.cli_bin)
    try:
        plain.start_musterd()
        assert "INSECURE" in plain.musterd.text()
        rc, out, _ = plain.cli("cluster")
        assert "INSECURE" in out and "anonymous (insecure)" in out, out
        plain.stop_all()
    finally:
        for p in plain.procs():
            if p.alive():
                p.kill()
    # the harness's certificates again for this test's cluster
    c.__init__(c.musterd_bin, c.agent_bin, c.cli_bin)


if __name__ == "__main__":
    main([
        test_plaintext_and_foreign_ca_refused,
        test_expired_and_not_yet_valid_refused,
        test_certificate_kinds_stay_in_their_lane,
        test_server_certificate_reload,
        test_revoked_certificate_refused_without_restart,
        test_etcd_over_mtls,
        test_insecure_is_explicit_and_loud,
    ])
