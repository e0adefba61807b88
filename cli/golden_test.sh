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
  mkdir -p "$dir/fpath"
  "$muster" completion zsh > "$dir/fpath/_muster"
  if zsh -n "$dir/fpath/_muster"; then passes=$((passes + 1)); else
    echo "FAIL zsh -n rejects the zsh completion"; fails=$((fails + 1)); fi
  # A real interactive zsh on a pty (zsh/zpty): type WORDS, Tab, Enter. The completed line runs
  # `mt`, bound to muster's completion, which prints what it was given.
  complete_zsh() {
    PATH="$dir/bin:$PATH" FPATH_DIR="$dir/fpath" LINE="$1" timeout 30 zsh -f -c '
      zmodload zsh/zpty
      zpty z "TERM=dumb zsh -f -i"
      zpty -w z "PS1=\"> \"; fpath=(\$FPATH_DIR \$fpath); autoload -U compinit; compinit -u; compdef _muster mt; mt() { print -r -- \"RES\"\"ULT[\$*]\" }"
      sleep 1
      zpty -w -n z "mt $LINE"$'"'"'\t'"'"'
      sleep 0.5
      zpty -w -n z $'"'"'\n'"'"'
      out=""
      for i in {1..200}; do   # up to 20 s on a loaded machine
        while zpty -r -t z chunk; do out+=$chunk; done
        [[ $out == *RESULT\[*\]* ]] && break
        sleep 0.1
      done
      zpty -d z
      print -r -- ${${out##*RESULT\[}%%\]*}'
  }
  expect "zsh: commands" "agents" "$(complete_zsh "ag")"
  expect "zsh: global flags" "--context" "$(complete_zsh "--conte")"
  expect "zsh: a command's flags from its --help" "agents --state" "$(complete_zsh "agents --sta")"
  expect "zsh: subcommands" "pki issue" "$(complete_zsh "pki iss")"
else
  echo "SKIP zsh checks: zsh is not installed (scripts/setup installs it)"
fi
"$muster" completion fish >/dev/null 2>&1
expect "completion fish exit code" 2 "$?"
"$muster" --version | grep -Eq '^muster [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{40}(-dirty)?|unknown)\)$'
expect "--version format" 0 "$?"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
