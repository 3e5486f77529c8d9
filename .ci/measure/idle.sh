#!/bin/bash
# Measures one tenant's idle fetches after a backfill (BENCHMARKS.md, "Idle fetches on a big store"):
# a wizsim of N issues, one `wizfetch run` daemon fetching every second with both feeds; once the
# backfill is delivered and 15 s have passed, prints the daemon's CPU over the next 60 s. Run by hand,
# not by CI.
#   usage: .ci/measure/idle.sh WIZFETCH_BINARY N
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH); PORT (default 18700, and PORT+1)
BIN=$1; N=$2; PORT=${PORT:-18700}
D=$(mktemp -d)
${WIZSIM:-wizsim} --listen 127.0.0.1:$PORT --issues $N --seed 1 >/dev/null 2>&1 &
SIM=$!
sleep 1.5
cat > $D/c.yaml <<Y
wiz: {api_url: http://127.0.0.1:$PORT/graphql, auth_url: http://127.0.0.1:$PORT/oauth/token, audience: wiz-api, client_id: wizsim-client, client_secret: wizsim-secret, requests_per_second: 1000}
fetch: {interval: 1s, updates: true, max_per_fetch: 200, status: [OPEN, IN_PROGRESS, RESOLVED, REJECTED]}
store: {path: $D/wizfetch.db}
server: {listen: 127.0.0.1:$((PORT+1))}
sinks: [{name: file, type: jsonl, path: $D/incidents.jsonl}]
Y
"$BIN" run --config $D/c.yaml >/dev/null 2>$D/err &
PID=$!
want=$((N*99/100))
while [ "$(cat $D/incidents.jsonl 2>/dev/null | wc -l)" -lt $want ]; do
  kill -0 $PID 2>/dev/null || { echo "the daemon ended:"; tail -3 $D/err; kill $SIM; rm -rf $D; exit 1; }
  sleep 2
done
sleep 15
t0=$(awk '{print $14+$15}' /proc/$PID/stat)
sleep 60
t1=$(awk '{print $14+$15}' /proc/$PID/stat)
echo "n=$N lines=$(wc -l < $D/incidents.jsonl) db=$(du -m $D/wizfetch.db | cut -f1)MB idle_cpu_60s=$(python3 -c "print(($t1-$t0)/$(getconf CLK_TCK))")s"
kill $PID; wait $PID 2>/dev/null; kill $SIM; rm -rf $D
