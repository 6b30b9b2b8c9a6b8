package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/payledger/payledger/eventstore"
)

// PositionOf returns the global position of the event with the given id
// (canonical UUID text); ok is false when no such event is stored. It lets
// a feed resume "after" an event id that a client kept.
func (s *Store) PositionOf(ctx context.Context, eventID string) (eventstore.Position, bool, error) {
	if _, err := uuid.Parse(eventID); err != nil {
		return eventstore.Position{}, false, nil
	}
	var p eventstore.Position
	err := s.db.QueryRowContext(ctx, `SELECT tx_id, global_position FROM events WHERE event_id = $1::uuid`, eventID).Scan(&p.Commit, &p.Prepare)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Position{}, false, nil
	}
	if err != nil {
		return eventstore.Position{}, false, fmt.Errorf("eventstore/postgres: position of %s: %w", eventID, err)
	}
	return p, true, nil
}
