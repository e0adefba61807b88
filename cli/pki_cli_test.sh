#!/bin/sh
# `muster pki` as an operator runs it: init, issue each kind, revoke, show; the files, their
# modes and what the real `openssl` CLI says about them; bad usage exits 2 naming the problem.
# Usage: pki_cli_test.sh PATH/TO/muster
set -eu
muster=$(realpath "$1")
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pki-cli-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD...: runs CMD, output in $out, and checks its exit code.
expect() {
  want=$1
  shift
  set +e
  out=$("$@" 2>&1)
  got=$?
  set -e
  [ "$got" = "$want" ] || fail "$* exited $got, want $want: $out"
}
contains() { case "$out" in *"$1"*) ;; *) fail "output lacks '$1': $out" ;; esac; }
mode() { stat -c %a "$1"; }

# --- the one-minute walkthrough ---
expect 0 "$muster" pki init --out pki
contains "wrote pki/ca.crt, pki/ca.key (0600)"
[ "$(mode pki)" = 700 ] || fail "pki is $(mode pki)"
[ "$(mode pki/ca.key)" = 600 ] || fail "ca.key is $(mode pki/ca.key)"
expect 1 "$muster" pki init --out pki
contains "already exists"
contains "--force"

expect 0 "$muster" pki issue --ca pki --kind server --name musterd-1 \
  --san musterd.example.com,10.0.0.5 --san localhost --out pki/musterd-1
contains "wrote pki/musterd-1.crt, pki/musterd-1.key (0600)"
for a in web-1 web-2; do
  expect 0 "$muster" pki issue --ca pki --kind agent --name "$a" --out "pki/$a"
done
expect 0 "$muster" pki issue --ca pki --kind admin --name alice --role operator --out pki/alice
[ "$(mode pki/alice.key)" = 600 ] || fail "alice.key is $(mode pki/alice.key)"

expect 0 openssl verify -CAfile pki/ca.crt pki/musterd-1.crt pki/web-1.crt pki/web-2.crt pki/alice.crt
expect 0 openssl verify -purpose sslserver -CAfile pki/ca.crt pki/musterd-1.crt
expect 2 openssl verify -purpose sslserver -CAfile pki/ca.crt pki/web-1.crt

expect 0 "$muster" pki show pki/musterd-1.crt
contains "kind     server"
contains "name     musterd-1"
contains "sans     musterd.example.com,10.0.0.5,localhost"
contains "usage    serverAuth, clientAuth"
expect 0 "$muster" pki show pki/alice.crt -o json
contains '"certKind":"admin"'
contains '"role":"operator"'
contains '"clientAuth":true'
expect 0 "$muster" -o json pki show pki/web-1.crt
contains '"name":"web-1"'
contains '"role":""'
serial=$(openssl x509 -in pki/web-1.crt -noout -serial | cut -d= -f2)
contains "\"serial\":\"$serial\""

expect 0 "$muster" pki crl --ca pki --revoke pki/web-1.crt
contains "revoked pki/web-1.crt (serial $serial)"
contains "wrote pki/ca.crl (CRL number 1, 1 revoked"
expect 0 "$muster" pki crl --ca pki --revoke pki/web-1.crt -o json
contains '"entries":1'
contains '"number":2'
expect 0 openssl crl -in pki/ca.crl -CAfile pki/ca.crt -noout -text
contains "Serial Number: $serial"
expect 2 openssl verify -crl_check -CRLfile pki/ca.crl -CAfile pki/ca.crt pki/web-1.crt
expect 0 openssl verify -crl_check -CRLfile pki/ca.crl -CAfile pki/ca.crt pki/web-2.crt

# --- refusals ---
expect 2 "$muster" pki
expect 0 "$muster" pki --help
for sub in init issue crl show; do
  expect 0 "$muster" pki "$sub" --help
  contains "usage: muster pki $sub"
done
expect 2 "$muster" pki frobnicate
contains "unknown subcommand 'frobnicate'"
expect 2 "$muster" pki init
contains "--out DIR is required"
expect 2 "$muster" pki init --out x --days soon
contains "--days: expected 1..36500, got 'soon'"
expect 2 "$muster" pki init --out x --color
contains "unknown option '--color'"
expect 2 "$muster" pki init --out
contains "--out needs a value"
expect 2 "$muster" pki issue --ca pki --kind agent --name a1
contains "--ca, --kind, --name and --out are required"
expect 2 "$muster" pki issue --ca pki --kind robot --name a1 --out a1
contains "kind 'robot'"
expect 2 "$muster" pki issue --ca pki --kind agent --name 'a/1' --out a1
contains "name 'a/1'"
expect 2 "$muster" pki issue --ca pki --kind agent --name a1 --role admin --out a1
contains "only admin certificates carry a role"
expect 2 "$muster" pki issue --ca pki --kind admin --name a1 --role root --out a1
contains "role 'root'"
expect 2 "$muster" pki issue --ca pki --kind server --name s --san 'bad host' --out s
contains "SAN 'bad host'"
expect 2 "$muster" pki issue --ca nowhere --kind agent --name a1 --out a1
contains "nowhere/ca.crt"
expect 1 "$muster" pki issue --ca pki --kind agent --name web-2 --out pki/web-2
contains "--force"
expect 0 "$muster" pki issue --ca pki --kind agent --name web-2 --out pki/web-2 --force
expect 2 "$muster" pki crl
contains "--ca DIR is required"
expect 0 "$muster" pki init --out other
expect 0 "$muster" pki issue --ca other --kind agent --name stranger --out other/stranger
expect 2 "$muster" pki crl --ca pki --revoke other/stranger.crt
contains "was not issued by this CA"
# A certificate of this CA that Muster would refuse as an identity can still be revoked.
expect 0 openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \
  -CA pki/ca.crt -CAkey pki/ca.key -keyout twin.key -out twin.crt -subj /CN=twin \
  -addext "subjectAltName=URI:muster://agent/a,URI:muster://agent/b"
expect 2 "$muster" pki show twin.crt
contains "a second identity"
expect 0 "$muster" pki crl --ca pki --revoke twin.crt
contains "revoked twin.crt (serial"
contains "2 revoked"
expect 2 "$muster" pki show
contains "CERT is required"
expect 2 "$muster" pki show missing.crt
contains "missing.crt"
expect 2 "$muster" pki show pki/ca.key
expect 2 "$muster" pki show pki/web-1.crt -o yaml
[ ! -e a1.crt ] && [ ! -e a1.key ] || fail "a refused issue left files"
echo PASS
