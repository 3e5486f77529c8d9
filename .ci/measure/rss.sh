#!/bin/bash
# Measures one `wizfetch run --until-idle` backfill the way BENCHMARKS.md reports it (issue 18):
# VmHWM, the largest RssAnon, per-mapping resident sizes and CPU per delivered line, against a
# wizsim of N issues in its own process. Run by hand, not by CI.
#   usage: .ci/measure/rss.sh WIZFETCH_BINARY N
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH)
#          CGDIR=a memory cgroup (v1) directory to run the daemon in, as a container limit would
#          KEEP=path to keep a copy of the store
BIN=$1; N=$2; PORT=${PORT:-18555}
D=$(mktemp -d)
. "$(dirname "$0")/backfill.sh"
start_backfill "$N" "$PORT" "$D"
bash -c "[ -n \"$CGDIR\" ] && echo \$\$ > $CGDIR/cgroup.procs; exec /usr/bin/time -f '%U %S %e %M' -o $D/time $BIN run --until-idle --config $D/c.yaml" >/dev/null 2>$D/err &
TP=$!
sleep 0.2
PID=$(pgrep -P $TP | head -1)
maxanon=0; last=""
while kill -0 $PID 2>/dev/null; do
  s=$(grep -E "RssAnon|RssFile|VmHWM" /proc/$PID/status 2>/dev/null | awk '{printf "%s ", $2}')
  [ -n "$s" ] && last="$s"
  a=$(echo $s | awk '{print $2}'); [ -n "$a" ] && [ "$a" -gt "$maxanon" ] && maxanon=$a
  awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{r[name]+=$2} END{for(n in r) if (r[n]>1000) printf "%s=%d ", n, r[n]; print ""}' /proc/$PID/smaps > $D/smaps.tmp 2>/dev/null && [ -s $D/smaps.tmp ] && cp $D/smaps.tmp $D/smaps
  sleep 0.3
done
echo "smaps(last): $(cat $D/smaps)"
wait $TP
kill $SIM
read U S E M < $D/time
L=$(wc -l < $D/incidents.jsonl)
echo "time=$U+$S n=$N hwm_kb=$M maxanon_kb=$maxanon last(hwm anon file)=$last cpu_ms_per_issue=$(python3 -c "print(round(($U+$S)*1000/$L,4))") lines=$L db=$(du -m $D/wizfetch.db|cut -f1)MB"
[ -n "$KEEP" ] && cp $D/wizfetch.db $KEEP; rm -rf $D
