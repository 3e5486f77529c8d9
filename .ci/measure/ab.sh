#!/bin/bash
# Alternates rss.sh runs of two wizfetch builds (A B A B …, or B A when RUNS is odd-started with
# FLIP=1) and prints each build's CPU per delivered issue and largest RssAnon, then their medians:
# the A/B protocol of BENCHMARKS.md (issue 18), for changes smaller than this VM's noise between
# batches (~15 %). Run by hand, not by CI.
#   usage: .ci/measure/ab.sh WIZFETCH_A WIZFETCH_B [N=12000] [RUNS=5]
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH); FLIP=1 starts with B
A=$1; B=$2; N=${3:-12000}; RUNS=${4:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp)
for i in $(seq 1 "$RUNS"); do
  if [ -n "$FLIP" ]; then ORDER="B A"; else ORDER="A B"; fi
  for w in $ORDER; do
    if [ $w = A ]; then BIN=$A; else BIN=$B; fi
    line=$("$HERE/rss.sh" "$BIN" "$N" 2>/dev/null | tail -1)
    cpu=$(echo "$line" | grep -o 'cpu_ms_per_issue=[0-9.]*' | cut -d= -f2)
    anon=$(echo "$line" | grep -o 'maxanon_kb=[0-9]*' | cut -d= -f2)
    echo "$w cpu_ms_per_issue=$cpu maxanon_kb=$anon"
    echo "$w $cpu $anon" >> "$OUT"
  done
done
python3 - "$OUT" "$A" "$B" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 3]
for w, name in (("A", sys.argv[2]), ("B", sys.argv[3])):
    cpu = [float(r[1]) for r in rows if r[0] == w]
    anon = [int(r[2]) for r in rows if r[0] == w]
    if cpu:
        print("%s %s: median cpu_ms_per_issue=%.4f (%.4f-%.4f) median maxanon_mib=%.1f runs=%d" % (
            w, name, statistics.median(cpu), min(cpu), max(cpu), statistics.median(anon) / 1024, len(cpu)))
PY
rm -f "$OUT"
