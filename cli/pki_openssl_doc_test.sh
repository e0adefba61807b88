#!/bin/sh
# Runs the openssl commands of docs/security.md ("The same files with the openssl CLI") as
# written, then checks that Muster accepts what they made: `muster pki show` reads each
# identity, openssl verifies the chain and the CRL, and `muster pki crl` works on that CA.
# Usage: pki_openssl_doc_test.sh PATH/TO/muster PATH/TO/security.md
set -eu
muster=$(realpath "$1")
doc=$(realpath "$2")
work=$(mktemp -d "${TEST_TMPDIR:-/tmp}/pki-doc-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

sed -n '/<!-- openssl-alternative:begin -->/,/<!-- openssl-alternative:end -->/p' "$doc" |
  sed -e '/^<!--/d' -e '/^```/d' > commands.sh
[ "$(grep -c 'openssl' commands.sh)" -ge 5 ] || fail "no commands found in $doc"
sh -eu commands.sh > commands.log 2>&1 || { cat commands.log; fail "the documented commands failed"; }

[ "$(stat -c %a pki)" = 700 ] || fail "pki is $(stat -c %a pki)"
for k in ca musterd-1 web-1 web-2 alice; do
  [ "$(stat -c %a "pki/$k.key")" = 600 ] || fail "pki/$k.key is $(stat -c %a "pki/$k.key")"
done
openssl verify -CAfile pki/ca.crt pki/musterd-1.crt pki/web-1.crt pki/alice.crt
openssl verify -purpose sslserver -CAfile pki/ca.crt pki/musterd-1.crt
openssl verify -crl_check -CRLfile pki/ca.crl -CAfile pki/ca.crt pki/web-1.crt
if openssl verify -crl_check -CRLfile pki/ca.crl -CAfile pki/ca.crt pki/web-2.crt; then
  fail "web-2 is revoked in the documented CRL"
fi

# show KEY VALUE CERT: `muster pki show CERT -o json` has "KEY":VALUE
show() {
  out=$("$muster" pki show "$3" -o json) || fail "muster pki show $3 refused it"
  case "$out" in *"\"$1\":$2"*) ;; *) fail "$3: want \"$1\":$2 in $out" ;; esac
}
show certKind '"server"' pki/musterd-1.crt
show name '"musterd-1"' pki/musterd-1.crt
show sans '["musterd.example.com","10.0.0.5","localhost","127.0.0.1"]' pki/musterd-1.crt
show serverAuth true pki/musterd-1.crt
show clientAuth true pki/musterd-1.crt
show certKind '"agent"' pki/web-1.crt
show name '"web-1"' pki/web-1.crt
show serverAuth false pki/web-1.crt
show certKind '"admin"' pki/alice.crt
show role '"operator"' pki/alice.crt
show ca true pki/ca.crt

# Muster's own tools work on the openssl-made CA: issue from it, revoke with it.
"$muster" pki issue --ca pki --kind agent --name web-3 --out pki/web-3
"$muster" pki crl --ca pki --revoke pki/web-1.crt --out pki/muster.crl
openssl verify -CAfile pki/ca.crt pki/web-3.crt
if openssl verify -crl_check -CRLfile pki/muster.crl -CAfile pki/ca.crt pki/web-1.crt; then
  fail "web-1 is revoked in muster's CRL"
fi
echo PASS
