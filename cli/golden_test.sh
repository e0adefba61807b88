#!/usr/bin/env bash
# `muster --help` and `muster completion bash|zsh` against their golden files, and the scripts
# loaded by real shells (bash; zsh when installed). Regenerate a golden after a deliberate
# change with: bazel-bin/cli/muster --help > cli/testdata/help.golden (and likewise).
#   golden_test.sh MUSTER TESTDATA_DIR
set -uo pipefail
muster=$1 data=$2
export MUSTER_CONFIG=/nonexistent ASAN_OPTIONS=detect_leaks=0
fails=0 passes=0
check() { # name, command...
  local name=$1
  shift
  if diff -u "$data/$name.golden" <("$@" 2>&1); then
    passes=$((passes + 1))
  else
    echo "FAIL $name differs from $data/$name.golden"
    fails=$((fails + 1))
  fi
}
check help "$muster" --help
check completion.bash "$muster" completion bash
check completion.zsh "$muster" completion zsh

expect() { # description, expected, actual
  if [ "$2" = "$3" ]; then passes=$((passes + 1)); else
    echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin"
ln -s "$(cd "$(dirname "$muster")" && pwd)/$(basename "$muster")" "$dir/bin/muster"
"$muster" completion bash > "$dir/muster.bash"
complete_bash() { # words... (the last is the one completed)
  PATH="$dir/bin:$PATH" bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
    _muster; echo "${COMPREPLY[*]}"' _ "$dir/muster.bash" "$@"
}
expect "bash: commands" "agents audit" "$(complete_bash muster a)"
expect "bash: global flags" "--context --ca --cert" "$(complete_bash muster --c)"
expect "bash: after a global flag's value" "config" "$(complete_bash muster --addr h:1 con)"
expect "bash: subcommands" "issue" "$(complete_bash muster pki is)"
expect "bash: a command's flags from its --help" "--state" "$(complete_bash muster agents --st)"
expect "bash: -o values" "json" "$(complete_bash muster -o j)"
expect "bash: completion shells" "bash" "$(complete_bash muster completion b)"
if command -v zsh >/dev/null; then
  if zsh -n <("$muster" completion zsh); then passes=$((passes + 1)); else
    echo "FAIL zsh -n rejects the zsh completion"; fails=$((fails + 1)); fi
else
  echo "SKIP zsh syntax check: zsh is not installed"
fi
"$muster" completion fish >/dev/null 2>&1
expect "completion fish exit code" 2 "$?"
"$muster" --version | grep -Eq '^muster [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{40}(-dirty)?|unknown)\)$'
expect "--version format" 0 "$?"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
