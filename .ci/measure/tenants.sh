#!/bin/bash
# Measures N tenants in one daemon the way BENCHMARKS.md reports it (issue 19): one wizsim process
# of 200 issues, one `wizfetch run` daemon with N instances; prints the time until every feed's
# first fetch succeeded, until the backfill is delivered, memory at those points, and the daemon's
# CPU and storage writes over IDLE_SECONDS of idle. Run by hand, not by CI.
#   usage: .ci/measure/tenants.sh WIZFETCH_BINARY N [IDLE_SECONDS]
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH)
#          CGDIR=a memory cgroup (v1) directory to run the daemon in
#          WF_PPROF=127.0.0.1:18602 with a build that serves net/http/pprof there, and then
#          PROF, PROF0 (+PROF0S), HEAP, HEAP0, GOR: where to write profiles
#          REVEAL=1: serve the issues with `BIN bench-sim --reveal` instead of wizsim
#          STATUSES=the fetch.status list (default all four: every issue becomes an incident)
#          KEEPERR=path to keep the daemon's log
#          MAXPENDING=the JSONL sink's max_pending (default 1000000: back-pressure never pauses the backfill)
#          PERF0=path: record the first PERF0S (default 10) seconds with `perf record -g`
#          PERF=path: record the idle window with `perf record -g` (any build; perf report -i PATH)
BIN=$1; N=$2; IDLE=${3:-60}; SP=18600; AP=18601
D=$(mktemp -d)
if [ -n "$REVEAL" ]; then
  # wizfetch's own bench simulator, its clock 10 minutes ahead: every issue visible from the start,
  # so the idle minute is idle (with wizsim, issues still becoming visible are real work).
  # (bench-sim stops when its stdin closes: keep a pipe open for it.)
  mkfifo $D/simin; sleep 100000 > $D/simin & KEEPOPEN=$!
  env -u WF_PPROF $BIN bench-sim --reveal --listen 127.0.0.1:$SP --issues 200 --seed 19 < $D/simin >/dev/null 2>&1 &
else
${WIZSIM:-wizsim} --listen 127.0.0.1:$SP --issues 200 --seed 19 >/dev/null 2>&1 &
fi
SIM=$!
sleep 1
{
cat <<Y
wiz: {api_url: http://127.0.0.1:$SP/graphql, auth_url: http://127.0.0.1:$SP/oauth/token, audience: wiz-api, client_id: wizsim-client, client_secret: wizsim-secret, requests_per_second: 3}
fetch: {interval: 1m, max_per_fetch: 200, status: [${STATUSES:-OPEN, IN_PROGRESS, RESOLVED, REJECTED}]}
store: {path: $D/wizfetch.db}
sinks: [{name: file, type: jsonl, path: $D/incidents.jsonl, max_pending: ${MAXPENDING:-1000000}}]
server: {listen: 127.0.0.1:$AP}
instances:
Y
for i in $(seq -w 1 $N); do echo "  - {name: t$i}"; done
} > $D/c.yaml
START=$(date +%s.%N)
bash -c "[ -n \"$CGDIR\" ] && echo \$\$ > $CGDIR/cgroup.procs; exec $BIN run --config $D/c.yaml" >/dev/null 2>$D/err &
PID=$!
[ -n "$PERF0" ] && (perf record -q -F 499 -g -p $PID -o $PERF0 -- sleep ${PERF0S:-10} 2>/dev/null) &
[ -n "$HEAP0" ] && (sleep 3; curl -s -o $HEAP0 "http://127.0.0.1:18602/debug/pprof/heap?gc=1") &
[ -n "$PROF0" ] && (sleep 1; curl -s -o $PROF0 "http://127.0.0.1:18602/debug/pprof/profile?seconds=${PROF0S:-40}") &
first=""; ifirst=""; hwm=0
while true; do
  sleep 0.5
  kill -0 $PID 2>/dev/null || { echo "daemon died"; tail -5 $D/err; break; }
  st=$(curl -s http://127.0.0.1:$AP/v1/status)
  [ -z "$st" ] && continue
  read total done backlog ninst instdone <<<$(echo "$st" | python3 -c "
import json,sys
s=json.load(sys.stdin); f=[x for i in s['instances'] for x in i.get('feeds',[])]
pend=sum(sum(i.get('pending',{}).values()) for i in s['instances'])
inst=sum(1 for i in s['instances'] if any(x.get('last_success') for x in i.get('feeds',[])))
print(len(f), sum(1 for x in f if x.get('last_success')), sum(1 for x in f if x.get('backlog'))+pend, len(s['instances']), inst)")
  now=$(date +%s.%N)
  if python3 -c "import sys; sys.exit(0 if $now-$START > 1200 else 1)"; then echo "gave up after 20 minutes"; break; fi
  if [ -z "$ifirst" ] && [ "$ninst" -gt 0 ] && [ "$instdone" = "$ninst" ]; then
    ifirst=$(python3 -c "print(round($now-$START,1))")
    echo "every one of $ninst instances fetched once (any feed) after ${ifirst}s (CPU so far: daemon $(awk '{print ($14+$15)/100}' /proc/$PID/stat)s, simulator $(awk '{print ($14+$15)/100}' /proc/$SIM/stat)s)"
  fi
  if [ -z "$first" ] && [ "$total" -gt 0 ] && [ "$done" = "$total" ]; then
    first=$(python3 -c "print(round($now-$START,1))")
    echo "all $total feeds fetched once after ${first}s: $(grep -E 'VmHWM|RssAnon|RssFile' /proc/$PID/status | tr -s ' \n' ' ')"
  fi
  if [ -n "$first" ] && [ "$backlog" = "0" ]; then
    lines=$(wc -l < $D/incidents.jsonl)
    echo "backfill and delivery done after $(python3 -c "print(round($now-$START,1))")s, $lines lines: $(grep -E 'VmHWM|RssAnon|RssFile' /proc/$PID/status | tr -s ' \n' ' ')(CPU so far: daemon $(awk '{print ($14+$15)/100}' /proc/$PID/stat)s, simulator $(awk '{print ($14+$15)/100}' /proc/$SIM/stat)s)"
    break
  fi
done
sleep 5; [ -n "$GOR" ] && curl -s -o $GOR "http://127.0.0.1:18602/debug/pprof/goroutine?debug=1"; [ -n "$HEAP" ] && curl -s -o $HEAP "http://127.0.0.1:18602/debug/pprof/heap"; [ -n "$PROF" ] && curl -s -o $PROF "http://127.0.0.1:18602/debug/pprof/profile?seconds=$IDLE" &
[ -n "$ALLOCS" ] && curl -s -o $ALLOCS "http://127.0.0.1:18602/debug/pprof/allocs?seconds=$IDLE" &
t0=$(awk '{print $14+$15}' /proc/$PID/stat); w0=$(awk '/^write_bytes/{print $2}' /proc/$PID/io); x0=$(awk '/^wchar/{print $2}' /proc/$PID/io); c0=$(awk '/^syscw/{print $2}' /proc/$PID/io)
if [ -n "$PERF" ]; then perf record -q -F 499 -g -p $PID -o $PERF -- sleep $IDLE 2>/dev/null; else sleep $IDLE; fi
t1=$(awk '{print $14+$15}' /proc/$PID/stat); w1=$(awk '/^write_bytes/{print $2}' /proc/$PID/io); x1=$(awk '/^wchar/{print $2}' /proc/$PID/io); c1=$(awk '/^syscw/{print $2}' /proc/$PID/io)
echo "idle ${IDLE}s: $(python3 -c "print(round(($x1-$x0)/1048576,1))") MiB in $((c1-c0)) write calls, files and sockets; $(python3 -c "print(round(($w1-$w0)/1048576,1))") MiB of it newly dirtied pages (/proc/PID/io wchar, syscw, write_bytes)"
echo "idle ${IDLE}s: $(python3 -c "print(round(($t1-$t0)/100,2))")s CPU = $(python3 -c "print(round(($t1-$t0)/$IDLE,2))")% of a core; $(grep -E 'VmHWM|VmRSS|RssAnon|RssFile|Threads' /proc/$PID/status | tr -s ' \n' ' ')"
grep -c '"level":"ERROR"' $D/err | sed 's/^/error log lines: /'
kill $PID; wait $PID 2>/dev/null; kill $SIM; [ -n "$KEEPOPEN" ] && kill $KEEPOPEN
[ -n "$KEEPERR" ] && cp $D/err $KEEPERR; rm -rf $D
