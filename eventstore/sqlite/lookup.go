package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/payledger/payledger/eventstore"
)

// PositionOf returns the global position of the event with the given id
// (canonical UUID text); ok is false when no such event is stored. It lets
// a feed resume "after" an event id that a client kept.
func (s *Store) PositionOf(ctx context.Context, eventID string) (eventstore.Position, bool, error) {
	var p int64
	err := s.r.QueryRowContext(ctx, `SELECT global_position FROM events WHERE event_id = ?`, eventID).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, false, nil
	}
	if err != nil {
		return eventstore.Position{}, false, fmt.Errorf("eventstore/sqlite: position of %s: %w", eventID, err)
	}
	return eventstore.Position{Commit: uint64(p), Prepare: uint64(p)}, true, nil
}
