#!/usr/bin/env bash
# Runs every fuzz target of the module for the given time each (default 30s):
# every `func Fuzz...` in a _test.go file under internal/ is found, among them
# the repository formats (tree, index, pack header and tail, snapshot), the
# agent HCL config loader (FuzzParseConfig) and repository URLs (FuzzParse in
# backend/location). The seed corpora and testdata/fuzz regressions also run
# as ordinary tests in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-30s}
grep -rl --include='*_test.go' '^func Fuzz' internal | while read -r file; do
  pkg=./$(dirname "$file")
  grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //' | while read -r target; do
    echo "== $pkg $target ($fuzztime)"
    go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"
  done
done
