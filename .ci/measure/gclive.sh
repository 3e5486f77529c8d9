#!/bin/bash
# Prints what the Go collector saw during one `wizfetch run --until-idle` backfill against a wizsim of
# N issues (issue 18): the number of collections, the largest heap a collection left live and the
# largest heap goal, in MB, from GODEBUG=gctrace=1. Run by hand, not by CI.
#   usage: .ci/measure/gclive.sh WIZFETCH_BINARY N
#   env:   WIZSIM=path to a wizsim binary (default: wizsim on PATH); KEEPERR=path to keep the trace
BIN=$1; N=$2; PORT=${PORT:-18557}
D=$(mktemp -d)
. "$(dirname "$0")/backfill.sh"
start_backfill "$N" "$PORT" "$D"
GODEBUG=gctrace=1 $BIN run --until-idle --config $D/c.yaml 2>$D/err >/dev/null
kill $SIM
grep "^gc " $D/err | python3 -c '
import re, sys
lives, goals = [], []
for line in sys.stdin:
    m = re.search(r"(\d+)->(\d+)->(\d+) MB, (\d+) MB goal", line)
    if m:
        lives.append(int(m.group(3))); goals.append(int(m.group(4)))
print("collections=%d max_live_mb=%d max_goal_mb=%d" % (len(lives), max(lives, default=0), max(goals, default=0)))'
[ -n "$KEEPERR" ] && cp $D/err "$KEEPERR"
rm -rf $D
