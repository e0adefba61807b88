#!/usr/bin/env bash
# CLI contexts (docs/cli.md, "Contexts"): listing, switching (comments kept), errors with
# FILE:LINE, relative paths, and the precedence flag > environment > context, seen in the
# address the CLI dials (nothing listens there, so the error names it).
#   config_test.sh MUSTER
set -uo pipefail
muster=$1
export ASAN_OPTIONS=detect_leaks=0
unset MUSTER_ADDR MUSTER_CA MUSTER_CERT MUSTER_KEY MUSTER_TOKEN MUSTER_CONTEXT
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export MUSTER_CONFIG=$dir/config.yaml
export HOME=${HOME:-$dir}
fails=0 passes=0
expect() { # description, expected, actual
  if [ "$2" = "$3" ]; then passes=$((passes + 1)); else
    echo "FAIL $1:"; echo "  expected: $2"; echo "  got:      $3"; fails=$((fails + 1)); fi
}
contains() { # description, needle, haystack
  case "$3" in *"$2"*) passes=$((passes + 1)) ;; *)
    echo "FAIL $1: '$2' not in:"; echo "$3"; fails=$((fails + 1)) ;; esac
}

out=$("$muster" config get-contexts 2>&1)
contains "no file yet" "no such file" "$out"
out=$("$muster" --context prod agents 2>&1); rc=$?
expect "--context without a file: exit" 2 "$rc"
contains "--context without a file" "there is no CLI config file $dir/config.yaml" "$out"

cat > "$MUSTER_CONFIG" <<'YAML'
# my contexts
current_context: lab   # the default
contexts:
  lab:
    addr: 127.0.0.1:1
    timeout: 2s
  prod:
    addr: 127.0.0.1:2,127.0.0.1:3
    ca: tls/ca.crt
    cert: ~/admin.crt
    key: /etc/muster/tls/admin.key
    token: s3cret
YAML
expect "get-contexts" "$(printf '%-8s %-20s %-32s %s\n' CURRENT NAME ADDR AUTH '*' lab 127.0.0.1:1 plaintext '' prod 127.0.0.1:2,127.0.0.1:3 mtls+token)" "$("$muster" config get-contexts)"
expect "get-contexts --names" "$(printf 'lab\nprod')" "$("$muster" config get-contexts --names)"
expect "current-context" lab "$("$muster" config current-context)"
json=$("$muster" -o json config get-contexts | sed -n 2p)
expect "get-contexts -o json" "{\"schema\":1,\"name\":\"prod\",\"current\":false,\"addr\":\"127.0.0.1:2,127.0.0.1:3\",\"ca\":\"$dir/tls/ca.crt\",\"cert\":\"$HOME/admin.crt\",\"key\":\"/etc/muster/tls/admin.key\",\"hasToken\":true,\"timeout\":\"\"}" "$json"
expect "config path" "$dir/config.yaml" "$("$muster" config path)"

# Precedence: the context's address, then MUSTER_ADDR over it, then --addr over both.
out=$("$muster" agents 2>&1); rc=$?
expect "current context: exit (unreachable)" 1 "$rc"
contains "current context's address" "127.0.0.1:1" "$out"
out=$(MUSTER_ADDR=127.0.0.1:4 "$muster" agents 2>&1)
contains "MUSTER_ADDR wins over the context" "127.0.0.1:4" "$out"
out=$(MUSTER_ADDR=127.0.0.1:4 "$muster" --addr 127.0.0.1:5 agents 2>&1)
contains "--addr wins over MUSTER_ADDR" "127.0.0.1:5" "$out"
out=$(MUSTER_CONTEXT=prod "$muster" --context lab agents 2>&1)
contains "--context wins over MUSTER_CONTEXT" "127.0.0.1:1" "$out"
chmod 644 "$MUSTER_CONFIG"
out=$(MUSTER_CONTEXT=prod "$muster" agents 2>&1)
contains "MUSTER_CONTEXT picks prod (its CA is read)" "tls/ca.crt" "$out"
contains "a token in a file others can read: warned" "holds a token and others can read it" "$out"
chmod 600 "$MUSTER_CONFIG"
out=$(MUSTER_CONTEXT=prod "$muster" agents 2>&1)
case "$out" in *"others can read"*) echo "FAIL warned about a 0600 file"; fails=$((fails + 1)) ;;
  *) passes=$((passes + 1)) ;; esac
out=$("$muster" --context nope agents 2>&1); rc=$?
expect "unknown context: exit" 2 "$rc"
contains "unknown context names the known ones" "no such context in $dir/config.yaml (contexts: lab, prod)" "$out"

# use-context rewrites only the current_context line.
expect "use-context" "switched to context 'prod'" "$("$muster" config use-context prod)"
expect "use-context -q" "" "$("$muster" -q config use-context prod)"
expect "current-context after use-context" prod "$("$muster" config current-context)"
expect "comments kept" "# my contexts" "$(head -1 "$MUSTER_CONFIG")"
expect "one current_context line" 1 "$(grep -c '^current_context:' "$MUSTER_CONFIG")"
"$muster" config use-context nope >/dev/null 2>&1
expect "use-context of an unknown name: exit" 2 "$?"
printf 'contexts:\n  a:\n    addr: 127.0.0.1:9\n' > "$dir/bare.yaml"
MUSTER_CONFIG=$dir/bare.yaml "$muster" config use-context a >/dev/null
expect "use-context adds the line" "current_context: a" "$(head -1 "$dir/bare.yaml")"

# Errors carry FILE:LINE and stop the command (exit 2) before anything is dialled.
printf 'contexts:\n  a:\n    adr: x:1\n' > "$dir/bad.yaml"
out=$(MUSTER_CONFIG=$dir/bad.yaml "$muster" agents 2>&1); rc=$?
expect "bad field: exit" 2 "$rc"
expect "bad field: message" "muster: $dir/bad.yaml:3: field 'contexts': context 'a': unknown field 'adr' (known: addr, ca, cert, key, token, timeout)" "$out"
printf 'current_context: b\ncontexts:\n  a: {addr: "x:1"}\n' > "$dir/bad2.yaml"
out=$(MUSTER_CONFIG=$dir/bad2.yaml "$muster" agents 2>&1)
contains "current_context must exist" "current_context 'b' is not among the contexts (a)" "$out"
printf 'contexts:\n  a:\n    addr: nope\n' > "$dir/bad3.yaml"
out=$(MUSTER_CONFIG=$dir/bad3.yaml "$muster" --context a agents 2>&1); rc=$?
expect "bad context address: exit" 2 "$rc"
contains "bad context address: names the context" "context a: 'nope' has no port" "$out"
printf 'contexts:\n  a: {addr: "x:1"}\n  a: {addr: "y:1"}\n' > "$dir/dup.yaml"
out=$(MUSTER_CONFIG=$dir/dup.yaml "$muster" agents 2>&1)
contains "a context given twice" "dup.yaml:3: field 'contexts': context 'a' given twice (first at line 2)" "$out"
# completion and config never trip over a broken file
MUSTER_CONFIG=$dir/bad.yaml "$muster" completion bash >/dev/null
expect "completion with a broken config file" 0 "$?"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
