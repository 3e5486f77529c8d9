#!/usr/bin/env bash
# Runs every fuzz target of the module for SECONDS each (default 30), one after another, and stops at
# the first failure. Targets are found by name (func FuzzX in a *_test.go file), so new ones are
# picked up without editing this script. Seeds: each target adds its own from the repository's
# testdata/ (testdata/issues, testdata/push, testdata/config, testdata/fuzz); the fuzzing engine keeps
# its generated corpus in the Go build cache. A failing input is written by `go test` to
# <package>/testdata/fuzz/<FuzzX>/<hash>; commit it as a regression seed once the bug is fixed.
#
# Usage: .ci/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-30}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (a positive whole number, default 30)" >&2
  exit 2
fi
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# "package-dir target" pairs, sorted for a stable order.
mapfile -t targets < <(find . -name '*_test.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './vendor/*')
pairs=()
for f in "${targets[@]}"; do
  f="${f#./}"
  while read -r name; do
    pairs+=("./$(dirname "$f") $name")
  done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$f")
done
if [ "${#pairs[@]}" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
mapfile -t pairs < <(printf '%s\n' "${pairs[@]}" | sort -u)

echo "fuzzing ${#pairs[@]} targets for ${secs}s each"
start=$(date +%s)
for p in "${pairs[@]}"; do
  read -r pkg name <<<"$p"
  echo "== $name ($pkg)"
  t0=$(date +%s)
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" "$pkg"; then
    echo "FAIL: $name in $pkg found a failing input; see $pkg/testdata/fuzz/$name/" >&2
    exit 1
  fi
  echo "   $name: ok in $(( $(date +%s) - t0 ))s"
done
echo "all ${#pairs[@]} fuzz targets passed (${secs}s each, $(( $(date +%s) - start ))s in all)"
