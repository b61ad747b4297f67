#!/usr/bin/env bash
# Ingest benchmark (not a test): file ingest and HTTP push of ~1M canonical events,
# with the release build. Writes bench/results/ingest-<date>.md.
#   bash bench/ingest.sh            # DOSSIERS=200000 CHUNK=50000 PARALLEL=4 by default
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/giamsat}
DOSSIERS=${DOSSIERS:-200000}
CHUNK=${CHUNK:-50000}
PARALLEL=${PARALLEL:-4}
[ -x "$BIN" ] || cargo build --release --bin giamsat
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }

"$BIN" generate --out "$work/gen" --dossiers "$DOSSIERS" --seed 1 >/dev/null
lines=$(wc -l < "$work/gen/events.ndjson")
bytes=$(stat -c %s "$work/gen/events.ndjson")

# 1. file ingest: parse, validate, dedup, one Delta commit, fsync, full facts build
t0=$(now)
"$BIN" --data "$work/file" ingest "$work/gen/events.ndjson" > "$work/file.json"
t1=$(now)
file_accepted=$(sed -E 's/.*"accepted":([0-9]+).*/\1/' "$work/file.json")
file_secs=$(echo "$t1 - $t0" | bc -l)

# 2. HTTP push: CHUNK-line bodies, PARALLEL clients, each reply only after a durable commit
"$BIN" --data "$work/http" ingest --format procedures "$work/gen/procedures.csv" >/dev/null
token=$("$BIN" --data "$work/http" token add --role admin)
"$BIN" --data "$work/http" serve --port 0 > "$work/serve.out" 2>/dev/null &
server=$!
for _ in $(seq 1 100); do grep -q '^listening on' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out" | head -n 1)
split -l "$CHUNK" "$work/gen/events.ndjson" "$work/chunk."
t2=$(now)
ls "$work"/chunk.* | xargs -P "$PARALLEL" -I{} curl -sf -o /dev/null -X POST \
  -H "Authorization: Bearer $token" -H "Content-Type: application/x-ndjson" \
  --data-binary @{} "$url/api/v1/events?source=hp-motcua"
t3=$(now)
kill "$server"; wait "$server" 2>/dev/null || true
http_events=$("$BIN" --data "$work/http" sql "SELECT count(*) AS n FROM events" --format csv | tail -n 1)
http_secs=$(echo "$t3 - $t2" | bc -l)

out="bench/results/ingest-$(date +%Y-%m-%d).md"
{
  echo "# Ingest benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); binary: $BIN (release)."
  echo "Input: \`giamsat generate --dossiers $DOSSIERS --seed 1\`: $lines lines, $((bytes / 1048576)) MiB of canonical NDJSON."
  echo
  echo "| path | events | seconds | events/s |"
  echo "|---|---:|---:|---:|"
  printf "| file ingest (\`giamsat ingest\`) | %s | %.1f | %.0f |\n" "$file_accepted" "$file_secs" "$(echo "$file_accepted / $file_secs" | bc -l)"
  printf "| HTTP push (%s-line bodies, %s clients) | %s | %.1f | %.0f |\n" "$CHUNK" "$PARALLEL" "$http_events" "$http_secs" "$(echo "$http_events / $http_secs" | bc -l)"
  echo
  echo "Both include validation, de-duplication, fsync'd Delta commits and the dossier-facts"
  echo "update after each commit. Reproduce: \`bash bench/ingest.sh\`."
} > "$out"
cat "$out"
