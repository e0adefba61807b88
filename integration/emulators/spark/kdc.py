"""A real MIT Kerberos KDC for one test (Debian's krb5-kdc / krb5-admin-server): its own realm,
database, ports and keytabs in a work dir, so SPNEGO between the agent (libcurl's GSS-API) and
a Kerberized endpoint (spark_emu.py with python3-gssapi) runs against the real protocol.

Kdc(workdir).start() creates the realm MUSTER.TEST with the service principal
HTTP/127.0.0.1 (keytab http.keytab, for the endpoint) and the client principal muster-agent
(keytab client.keytab, for the agent), starts krb5kdc in the foreground on a free port (TCP,
and UDP on the same number) and returns the environment the two sides need:
KRB5_CONFIG, KRB5_KTNAME (acceptor), KRB5_CLIENT_KTNAME (initiator) and KRB5CCNAME."""
import os
import socket
import subprocess
import time

REALM = "MUSTER.TEST"
CLIENT = "muster-agent@" + REALM


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Kdc:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "kdc")
        os.makedirs(self.dir, exist_ok=True)
        self.port = _free_port()
        self.p = None
        self.krb5_conf = os.path.join(self.dir, "krb5.conf")
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        self.http_keytab = os.path.join(self.dir, "http.keytab")
        self.client_keytab = os.path.join(self.dir, "client.keytab")
        self.ccache = "FILE:" + os.path.join(self.dir, "agent.ccache")

    def env(self):
        return {"KRB5_CONFIG": self.krb5_conf, "KRB5_KDC_PROFILE": self.kdc_conf, "KRB5_KTNAME": self.http_keytab,
                "KRB5_CLIENT_KTNAME": self.client_keytab, "KRB5CCNAME": self.ccache}

    def _run(self, *argv):
        env = dict(os.environ)
        env.update(self.env())
        subprocess.run(list(argv), env=env, check=True, capture_output=True, timeout=60)

    def start(self):
        with open(self.krb5_conf, "w") as f:
            f.write("""[libdefaults]
 default_realm = %(r)s
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
 ticket_lifetime = 1h
[realms]
 %(r)s = {
  kdc = 127.0.0.1:%(p)d
 }
[domain_realm]
 127.0.0.1 = %(r)s
""" % {"r": REALM, "p": self.port})
        with open(self.kdc_conf, "w") as f:
            f.write("""[kdcdefaults]
 kdc_ports = %(p)d
 kdc_tcp_ports = %(p)d
[realms]
 %(r)s = {
  database_name = %(d)s/principal
  key_stash_file = %(d)s/stash
  acl_file = %(d)s/kadm5.acl
  kdc_ports = %(p)d
  kdc_tcp_ports = %(p)d
 }
[logging]
 kdc = FILE:%(d)s/kdc.log
""" % {"r": REALM, "p": self.port, "d": self.dir})
        open(os.path.join(self.dir, "kadm5.acl"), "w").close()
        self._run("kdb5_util", "create", "-s", "-r", REALM, "-P", "kdc-master-" + os.urandom(6).hex())
        self._run("kadmin.local", "-r", REALM, "-q", "addprinc -randkey HTTP/127.0.0.1")
        self._run("kadmin.local", "-r", REALM, "-q", "addprinc -randkey muster-agent")
        self._run("kadmin.local", "-r", REALM, "-q", "ktadd -k %s HTTP/127.0.0.1" % self.http_keytab)
        self._run("kadmin.local", "-r", REALM, "-q", "ktadd -k %s muster-agent" % self.client_keytab)
        env = dict(os.environ)
        env.update(self.env())
        self.log = open(os.path.join(self.dir, "krb5kdc.out"), "ab")
        self.p = subprocess.Popen(["krb5kdc", "-n", "-r", REALM], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self.env()
            except OSError:
                if self.p.poll() is not None:
                    raise RuntimeError("krb5kdc exited %s" % self.p.returncode)
                time.sleep(0.1)
        raise RuntimeError("krb5kdc did not listen on %d" % self.port)

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "kdc.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
