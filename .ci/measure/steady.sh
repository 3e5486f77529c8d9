#!/bin/bash
# Measures one tenant at steady state (issue 18's page-size question): a wizsim of 20,000 issues in
# live mode (LIVE status changes a second, and half as many new issues), a daemon with both feeds
# every 10 s; after the backfill is delivered, prints what SECONDS of steady state cost: events
# delivered, bytes the daemon wrote (/proc/PID/io wchar: files and sockets; write_bytes: newly
# dirtied pages), write calls and RssAnon. Run by hand, not by CI.
#   usage: .ci/measure/steady.sh WIZFETCH_BINARY [LIVE=10] [SECONDS=90]
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH)
BIN=$1; LIVE=${2:-10}; SECS=${3:-90}; PORT=${PORT:-18570}
D=$(mktemp -d)
${WIZSIM:-wizsim} --listen 127.0.0.1:$PORT --issues 20000 --seed 1 --live "$LIVE" >/dev/null 2>&1 &
SIM=$!
sleep 1.5
cat > $D/c.yaml <<Y
wiz: {api_url: http://127.0.0.1:$PORT/graphql, auth_url: http://127.0.0.1:$PORT/oauth/token, audience: wiz-api, client_id: wizsim-client, client_secret: wizsim-secret, requests_per_second: 1000}
fetch: {updates: true, interval: 10s, max_per_fetch: 200, status: [OPEN, IN_PROGRESS, RESOLVED, REJECTED]}
store: {path: $D/wizfetch.db}
server: {listen: 127.0.0.1:$((PORT+1))}
sinks: [{name: file, type: jsonl, path: $D/incidents.jsonl}]
Y
$BIN run --config $D/c.yaml >/dev/null 2>$D/err &
PID=$!
lines() { [ -f $D/incidents.jsonl ] && wc -l < $D/incidents.jsonl || echo 0; }
io() { awk -v k="$1" '$1==k":"{print $2}' /proc/$PID/io; }
while [ "$(lines)" -lt 19000 ]; do kill -0 $PID 2>/dev/null || { echo "daemon exited: $(tail -3 $D/err)"; kill $SIM; exit 1; }; sleep 1; done
sleep 15
l0=$(lines); x0=$(io wchar); w0=$(io write_bytes); c0=$(io syscw)
sleep "$SECS"
l1=$(lines); x1=$(io wchar); w1=$(io write_bytes); c1=$(io syscw)
ev=$((l1-l0))
echo "steady ${SECS}s: $ev events; wrote $(( (x1-x0)/1024 )) KiB (wchar), $(( (w1-w0)/1024 )) KiB newly dirtied (write_bytes), $((c1-c0)) write calls; $(( (x1-x0)/1024/(ev>0?ev:1) )) KiB an event; $(grep RssAnon /proc/$PID/status | tr -s ' \t' ' ')"
kill $PID; wait $PID 2>/dev/null; kill $SIM; rm -rf $D
