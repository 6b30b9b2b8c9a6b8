#!/usr/bin/env bash
# Raw PostgreSQL INSERT ceiling for the event-store benchmarks: pgbench with
# 8 and 32 clients, one autocommitted single-row INSERT per transaction into
# a table shaped like the events table, on a scratch database that is
# created and dropped here. Also runs the store's append statement shape
# (one event per statement, new stream each time) so the ratio of the two
# is measured on the same server in the same run.
#
# Usage: scripts/pgbench-insert.sh [seconds]   (default 10)
# Server: PAYLEDGER_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
set -euo pipefail

secs="${1:-10}"
admin="${PAYLEDGER_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
db="plbench_$$"
url="${admin%%\?*}"
url="${url%/*}/$db"
case "$admin" in *\?*) url="$url?${admin#*\?}" ;; esac

command -v pgbench >/dev/null || { echo "pgbench-insert: pgbench not found (PostgreSQL client tools)" >&2; exit 1; }
psql -qX "$admin" -c "CREATE DATABASE $db" >/dev/null
tmp="$(mktemp -d)"
cleanup() { rm -rf "$tmp"; psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; }
trap cleanup EXIT

psql -qX "$url" >/dev/null <<'SQL'
CREATE TABLE plain_events (
	global_position bigint GENERATED ALWAYS AS IDENTITY,
	tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
	stream_id text NOT NULL, stream_version bigint NOT NULL,
	event_id uuid NOT NULL UNIQUE, event_type text NOT NULL,
	data json, metadata json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tx_id, global_position), UNIQUE (stream_id, stream_version));
CREATE TABLE streams (stream_id text PRIMARY KEY, version bigint NOT NULL, last_hash bytea NOT NULL);
CREATE TABLE events (LIKE plain_events INCLUDING ALL);
SQL

data='{"invoice_id":"inv_0190d2b2c7a97e3f9a1b2c3d4e5f6a7b","amount":"125.00","currency":"USD","number":"INV-000123"}'
meta='{"correlation_id":"req_5f2c9a","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1111111111111111111111111111111111111111111111111111111111111111"}'

cat >"$tmp/insert.sql" <<SQL
INSERT INTO plain_events (stream_id, stream_version, event_id, event_type, data, metadata)
VALUES ('s-' || gen_random_uuid(), 1, gen_random_uuid(), 'invoice.created', '$data', '$meta');
SQL
cat >"$tmp/append.sql" <<SQL
WITH s AS (
	INSERT INTO streams (stream_id, version, last_hash) VALUES ('s-' || gen_random_uuid(), 1, '\\x00')
	ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id
)
INSERT INTO events (stream_id, stream_version, event_id, event_type, data, metadata)
SELECT s.stream_id, 1, gen_random_uuid(), 'invoice.created', '$data', '$meta' FROM s
RETURNING global_position, tx_id;
SQL

tps() { pgbench -n -c "$2" -j 2 -T "$secs" -f "$tmp/$1.sql" "$url" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}'; }
for c in 8 32; do
	ins="$(tps insert "$c")"
	app="$(tps append "$c")"
	echo "clients=$c plain-insert tps=$ins append-statement tps=$app ratio=$(awk -v a="$app" -v b="$ins" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')"
done
