#!/bin/sh
# Smoke run of scan_bench at toy sizes: the feed imports, every kind of scan completes and
# finds what the generated feed plants (ids vary with the sizes; the counts must be non-zero).
set -eu
out=$("$1" "$2" --packages 40 --records 400 --files 50 --python 5 --runs 1)
echo "$out"
echo "$out" | grep -q '^feed update (import + index of all records) '
echo "$out" | grep -q '^scan, cold (empty store, no cached result) '
echo "$out" | grep -q '^scan, cached result '
echo "$out" | grep -Eq '^result +[1-9][0-9]* findings, 45 packages'
