#!/usr/bin/env bash
# Validates docker-compose.yml (schema, references, interpolation) without a
# container engine, then checks the wiring the scale-out tier relies on.
# Needs one of: the Compose v2 plugin (`docker compose`) or Debian's
# docker-compose package (`apt-get install -y docker-compose`); neither
# talks to a daemon for `config`.
set -euo pipefail
cd "$(dirname "$0")/.."

file=${1:-docker-compose.yml} # a path may be given to check another file
if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	echo "validate-compose: no Compose tool found; install one: apt-get install -y docker-compose" >&2
	exit 1
fi

# The file must load exactly as written: no variable may be left unset.
out=$("${compose[@]}" -f "$file" config 2>&1) || {
	echo "validate-compose: $file is invalid:" >&2
	echo "$out" >&2
	exit 1
}
if grep -q 'variable is not set' <<<"$out"; then
	echo "validate-compose: $file uses unset variables:" >&2
	grep 'variable is not set' <<<"$out" >&2
	exit 1
fi

fail=0
need() { # need <description> <extended regex> — over the normalised config
	if ! grep -Eq -- "$2" <<<"$out"; then
		echo "validate-compose: $file: missing $1" >&2
		fail=1
	fi
}
for svc in kurrentdb postgres payledger; do
	# Each service block, from its name to the next service, has a health check.
	block=$(awk -v s="  $svc:" '$0==s{on=1;print;next} on&&/^  [a-z]/{on=0} on' <<<"$out")
	if [ -z "$block" ]; then
		echo "validate-compose: $file: no service $svc" >&2
		fail=1
	elif ! grep -q 'healthcheck:' <<<"$block"; then
		echo "validate-compose: $file: service $svc has no healthcheck" >&2
		fail=1
	fi
done
need "the KurrentDB liveness probe" '/health/live'
need "pg_isready in the PostgreSQL health check" 'pg_isready'
need "the payledger /healthz probe" '/healthz'
need "PAYLEDGER_EVENTSTORE_URL pointing at the kurrentdb service" 'PAYLEDGER_EVENTSTORE_URL: esdb://kurrentdb:2113\?tls=false'
need "PAYLEDGER_DATABASE_URL pointing at the postgres service" 'PAYLEDGER_DATABASE_URL: postgres://[^@]+@postgres:5432/'
need "payledger waiting for healthy dependencies" 'condition: service_healthy'

# The image the file builds: static binary, non-root.
grep -q 'CGO_ENABLED=0' Dockerfile || { echo "validate-compose: Dockerfile does not build with CGO_ENABLED=0" >&2; fail=1; }
grep -Eq '^USER [1-9][0-9]*' Dockerfile || { echo "validate-compose: Dockerfile does not switch to a non-root numeric USER" >&2; fail=1; }

[ "$fail" = 0 ] && echo "validate-compose: $file OK (${compose[*]})"
exit "$fail"
