# Sourced by rss.sh and gclive.sh (not run on its own): the one-tenant backfill BENCHMARKS.md measures
# for issue 18. start_backfill N PORT DIR starts a wizsim of N issues on 127.0.0.1:PORT (its pid in
# SIM; WIZSIM names the binary, default wizsim on PATH) and writes DIR/c.yaml: updates off, pages of
# 200, every status, the store in DIR and one JSONL sink, DIR/incidents.jsonl.
start_backfill() {
  ${WIZSIM:-wizsim} --listen 127.0.0.1:$2 --issues $1 --seed 1 >/dev/null 2>&1 &
  SIM=$!
  sleep 1.5
  cat > $3/c.yaml <<Y
wiz: {api_url: http://127.0.0.1:$2/graphql, auth_url: http://127.0.0.1:$2/oauth/token, audience: wiz-api, client_id: wizsim-client, client_secret: wizsim-secret, requests_per_second: 1000}
fetch: {updates: false, max_per_fetch: 200, status: [OPEN, IN_PROGRESS, RESOLVED, REJECTED]}
store: {path: $3/wizfetch.db}
sinks: [{name: file, type: jsonl, path: $3/incidents.jsonl}]
Y
}
