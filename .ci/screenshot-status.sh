#!/usr/bin/env bash
# Screenshot of the status page of a running demo, for a human to look at. Run by hand (NOT part of
# .ci/run): it installs Debian's chromium when missing, builds wizfetch, runs
# `wizfetch demo --duration 40s` on 127.0.0.1:18080 in the background, waits ~25 s so the chart has
# data, and writes a 1280x1400 PNG of http://127.0.0.1:18080/.
#
# Usage: bash .ci/screenshot-status.sh [output.png]     (default /tmp/wizfetch-status.png)
# Env:   LISTEN (default 127.0.0.1:18080), WAIT seconds before the shot (default 25).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-/tmp/wizfetch-status.png}"
listen="${LISTEN:-127.0.0.1:18080}"
wait_s="${WAIT:-25}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium"
  apt-get update && apt-get install -y chromium
fi

work="$(mktemp -d)"
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build"
go build -o "$work/wizfetch" ./cmd/wizfetch

echo "== demo on $listen (log: $work/demo.log)"
"$work/wizfetch" demo --duration 40s --listen "$listen" --dir "$(mktemp -d)" >"$work/demo.log" 2>&1 &
demo_pid=$!

# Wait for the server to answer (the demo may take a moment to start), then let data accumulate.
for _ in $(seq 1 100); do
  if curl -fsS "http://$listen/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "demo exited early:"; cat "$work/demo.log"; exit 1
  fi
  sleep 0.2
done
curl -fsS "http://$listen/healthz" >/dev/null || { echo "no server on $listen:"; cat "$work/demo.log"; exit 1; }
sleep "$wait_s"

echo "== screenshot"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --window-size=1280,1400 \
  --screenshot="$out" "http://$listen/"
echo "wrote $out"
