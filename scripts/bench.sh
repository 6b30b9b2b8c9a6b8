#!/usr/bin/env bash
# make bench: every figure the issues name, measured in one run on this
# machine so that ratios compare like with like. Output goes to stdout and
# to bench-results/ (ignored by git); copy the figures you quote into
# docs/benchmarks.md with the machine and the date.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench-results
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log="$out/bench-$stamp.txt"
exec > >(tee "$log") 2>&1

echo "# payledger benchmarks $stamp on $(nproc) cores, $(uname -sr)"
psql -X -At "${PAYLEDGER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}" -c 'select version()' || true

echo; echo "## raw PostgreSQL INSERT ceiling (pgbench)"
bash scripts/pgbench-insert.sh "${PGBENCH_SECONDS:-10}"

echo; echo "## Go benchmarks"
# Every package with a benchmark (some live beside the tests they share
# fixtures with, e.g. projections/recon's BenchmarkRebuild).
pkgs=$(go list ./... | while read -r p; do
  d=$(go list -f '{{.Dir}}' "$p")
  if grep -qs '^func Benchmark' "$d"/*_test.go; then echo "$p"; fi
done)
# shellcheck disable=SC2086
go test -run='^$' -bench=. -benchtime="${BENCHTIME:-2s}" -timeout 30m $pkgs

echo; echo "## HTTP load (payledger bench): invoice + payment link per iteration"
go build -o "$out/payledger" ./cmd/payledger
"$out/payledger" bench --store sqlite --clients "${BENCH_CLIENTS:-32}" --duration "${BENCH_DURATION:-15s}" || echo "bench (sqlite) failed"
"$out/payledger" bench --store postgres --clients "${BENCH_CLIENTS:-32}" --duration "${BENCH_DURATION:-15s}" || echo "bench (postgres) failed"
# The same at fixed arrival rates below saturation: projection lag at a
# stated load rather than queueing at full load.
for r in ${BENCH_RATES:-100 200}; do
  "$out/payledger" bench --store postgres --clients "${BENCH_CLIENTS:-32}" --rate "$r" --duration "${BENCH_DURATION:-15s}" || echo "bench (postgres, $r/s) failed"
done
echo; echo "results written to $log"
