"""Prometheus scraping the daemons over TLS, the way docs/operations.md sets it up: musterd
serves /metrics over HTTPS and only to a scraper whose certificate comes from the fleet's CA
(curl --cacert --cert --key standing in for Prometheus; no certificate, another CA's or an
expired one get 403, logged once); an agent serves it over HTTPS to
anyone who trusts its certificate; half a TLS configuration is refused at start."""
import datetime
import os
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import Pki, free_port, main, wait_until


def curl(url, ca=None, cert=None):
    """(HTTP status or 0 when there was no HTTP answer, body) of GET url."""
    argv = ["curl", "-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", url]
    if ca:
        argv += ["--cacert", ca]
    if cert:
        argv += ["--cert", cert[0], "--key", cert[1]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def expired_cert(c, name):
    """(crt, key) of a client certificate from the cluster's CA that expired yesterday (a
    validity window `openssl x509` cannot set)."""
    ca = x509.load_pem_x509_certificate(open(c.pki.ca, "rb").read())
    ca_key = serialization.load_pem_private_key(open(c.pki.ca_key, "rb").read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    crt_path, key_path = (os.path.join(c.pki.dir, name + ext) for ext in (".crt", ".key"))
    with open(crt_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return crt_path, key_path


def test_musterd_metrics_need_a_client_certificate(c):
    port = free_port()
    crt, key = c.pki.issue("server", "musterd-metrics")
    c.start_musterd("--metrics-listen", "127.0.0.1:%d" % port, "--metrics-tls-cert", crt,
                    "--metrics-tls-key", key, "--metrics-tls-ca", c.pki.ca)
    url = "https://127.0.0.1:%d/metrics" % port
    scraper = c.pki.issue("admin", "prometheus")
    code, body = wait_until("musterd's first metrics snapshot",
                            lambda: (lambda r: r if "muster_leader" in r[1] else None)(
                                curl(url, ca=c.pki.ca, cert=scraper)))
    assert code == 200 and "muster_agents_connected 0" in body, (code, body)
    assert "metrics on https://127.0.0.1:%d/metrics" % port in c.musterd.text()
    # no certificate, twice: refused, logged once
    for _ in range(2):
        assert curl(url, ca=c.pki.ca)[0] == 403
    # a certificate from another CA
    other = Pki(os.path.join(c.workdir, "other-pki"))
    assert curl(url, ca=c.pki.ca, cert=other.issue("admin", "mallory"))[0] == 403
    # an expired certificate from the right CA
    assert curl(url, ca=c.pki.ca, cert=expired_cert(c, "old-prometheus"))[0] == 403
    # plaintext on the HTTPS port gets no HTTP answer at all
    assert curl("http://127.0.0.1:%d/metrics" % port)[0] == 0
    log = c.musterd.text()
    assert log.count("refused 127.0.0.1: no client certificate") == 1, log
    assert "refused 127.0.0.1: The certificate is NOT trusted. The certificate issuer is unknown." in log, log
    assert "refused 127.0.0.1: The certificate is NOT trusted. The certificate chain uses expired certificate." in log, log
    # the scraper is still served
    assert curl(url, ca=c.pki.ca, cert=scraper)[0] == 200


def test_agent_metrics_over_https(c):
    c.start_musterd()
    port = free_port()
    crt, key = c.pki.issue("server", "web-1-metrics")
    c.start_agent("web-1", "role=web", "--metrics-listen", "127.0.0.1:%d" % port,
                  "--metrics-tls-cert", crt, "--metrics-tls-key", key)
    url = "https://127.0.0.1:%d/metrics" % port
    wait_until("web-1's metrics to show it connected",
               lambda: "muster_agent_connected 1" in curl(url, ca=c.pki.ca)[1])
    assert curl("https://127.0.0.1:%d/healthz" % port, ca=c.pki.ca) == (200, "ok\n")


def test_half_a_tls_configuration_is_refused(c):
    crt, key = c.pki.issue("server", "musterd-metrics")
    for flags, missing in ((["--metrics-tls-cert", crt], "--metrics-tls-key"),
                           (["--metrics-tls-key", key, "--metrics-tls-ca", c.pki.ca],
                            "--metrics-tls-cert")):
        r = subprocess.run([c.musterd_bin, "--insecure", "--no-etcd", "--listen", c.addr,
                            "--metrics-listen", "127.0.0.1:%d" % free_port()] + flags,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "%s (%s) is missing" % (missing, missing[2:].replace("-", "_")) in r.stderr, r.stderr
    r = subprocess.run([c.agent_bin, "--insecure", "--metrics-listen", "127.0.0.1:%d" % free_port(),
                        "--metrics-tls-cert", crt], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--metrics-tls-key (metrics_tls_key) is missing" in r.stderr, r.stderr


if __name__ == "__main__":
    main([
        test_musterd_metrics_need_a_client_certificate,
        test_agent_metrics_over_https,
        test_half_a_tls_configuration_is_refused,
    ])
