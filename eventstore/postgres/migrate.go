package postgres

import (
	"context"
	"fmt"
)

// schema is idempotent. data and metadata are json, not jsonb: json keeps
// the exact bytes appended (whitespace, key order), which the hash chain
// covers, while jsonb would re-format them. json also costs the reader
// nothing to decode. Queries that need jsonb operators cast: data::jsonb.
// data is NULL for an event appended with empty data.
const schema = `
CREATE TABLE IF NOT EXISTS streams (
	stream_id  text   PRIMARY KEY,
	version    bigint NOT NULL CHECK (version > 0),
	last_hash  bytea  NOT NULL
) WITH (fillfactor = 50); -- every append updates its stream's row: leave room for HOT updates
CREATE TABLE IF NOT EXISTS events (
	global_position bigint      GENERATED ALWAYS AS IDENTITY,
	tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
	stream_id       text        NOT NULL,
	stream_version  bigint      NOT NULL CHECK (stream_version > 0),
	event_id        uuid        NOT NULL,
	event_type      text        NOT NULL,
	data            json,
	metadata        json        NOT NULL,
	recorded_at     timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tx_id, global_position),
	CONSTRAINT events_event_id_key UNIQUE (event_id),
	CONSTRAINT events_stream_id_stream_version_key UNIQUE (stream_id, stream_version)
);
-- The $all horizon (see horizonSQL in store.go). A PL/pgSQL function
-- because its plan is cached per session: inlined into each read, the
-- pg_stat_activity view's joins cost more to plan than the read itself.
-- STABLE, so pg_current_snapshot() is the calling statement's snapshot.
CREATE OR REPLACE FUNCTION payledger_read_horizon() RETURNS xid8
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
	snap pg_snapshot := pg_current_snapshot();
	h xid8;
BEGIN
	SELECT min(x) INTO h FROM pg_snapshot_xip(snap) x
	WHERE (x::text::int8 % 4294967296) NOT IN (
		SELECT a.backend_xid::text::int8 FROM pg_stat_get_activity(NULL) a
		WHERE a.backend_xid IS NOT NULL AND (a.application_name = '` + readModelApp + `'
			OR a.datid IS DISTINCT FROM (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())));
	RETURN coalesce(h, pg_snapshot_xmax(snap));
END
$fn$;
`

// migrationLock is the advisory-lock key that serialises concurrent
// migrations from several processes starting at once. It is only taken by
// Migrate, never on the append path.
const migrationLock = 0x706c6564676572 // "pledger"

// Migrate creates the store's tables if they do not exist. Open calls it;
// it is safe to call again and from several processes at once.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("eventstore/postgres: migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("eventstore/postgres: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("eventstore/postgres: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("eventstore/postgres: migrate: %w", err)
	}
	return nil
}
