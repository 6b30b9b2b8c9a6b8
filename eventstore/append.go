package eventstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"
)

// ErrInvalidEvent is returned (wrapped) by Append for events that no
// backend may store: a malformed id, an empty type, data that is not JSON,
// metadata that is not a JSON object or that uses the chain's keys.
var ErrInvalidEvent = errors.New("eventstore: invalid event")

// Normalize validates events before an append and returns copies in the
// form every backend stores: ids as lowercase canonical UUIDs (a random one
// when empty), metadata compacted by CanonicalMetadata. Backends call it
// first so that they all accept and reject the same input and hash the same
// bytes.
func Normalize(events []EventData) ([]EventData, error) {
	out := make([]EventData, len(events))
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		if e.ID == "" {
			e.ID = uuid.NewString()
		} else {
			id, err := uuid.Parse(e.ID)
			if err != nil {
				return nil, fmt.Errorf("%w: event %d: id %q is not a UUID", ErrInvalidEvent, i, e.ID)
			}
			e.ID = id.String()
		}
		if _, dup := seen[e.ID]; dup {
			return nil, fmt.Errorf("%w: event id %s twice in one append", ErrDuplicateEvent, e.ID)
		}
		seen[e.ID] = struct{}{}
		if e.Type == "" {
			return nil, fmt.Errorf("%w: event %d has no type", ErrInvalidEvent, i)
		}
		if len(e.Data) > 0 && !json.Valid(e.Data) {
			return nil, fmt.Errorf("%w: event %d (%s): data is not JSON", ErrInvalidEvent, i, e.Type)
		}
		m, err := CanonicalMetadata(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d (%s): %v", ErrInvalidEvent, i, e.Type, err)
		}
		e.Metadata = m
		out[i] = e
	}
	return out, nil
}

// IDs returns the event ids, in order.
func IDs(events []EventData) []string {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return ids
}

// CheckReappend decides an append whose event ids (some or all) are
// already stored. found holds the stored events with those ids, in any
// order; events are the normalized events of the append. When found is
// exactly the earlier append of the same events to the same stream
// (consecutive versions, same order, type, data and caller metadata), the
// earlier result is returned; otherwise the error wraps ErrDuplicateEvent.
func CheckReappend(stream string, events []EventData, found []RecordedEvent) (AppendResult, error) {
	if len(found) != len(events) || len(found) == 0 {
		return AppendResult{}, fmt.Errorf("%w: %d of %d event ids already stored", ErrDuplicateEvent, len(found), len(events))
	}
	sorted := append([]RecordedEvent(nil), found...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].StreamVersion < sorted[j].StreamVersion })
	for i, e := range events {
		r := sorted[i]
		fail := func(why string) (AppendResult, error) {
			return AppendResult{}, fmt.Errorf("%w: event %s: %s", ErrDuplicateEvent, e.ID, why)
		}
		if r.Stream != stream {
			return fail(fmt.Sprintf("already stored in stream %q", r.Stream))
		}
		if r.ID != e.ID {
			return fail("stored at another position of the stream")
		}
		if i > 0 && r.StreamVersion != sorted[i-1].StreamVersion+1 {
			return fail("earlier append was not these events")
		}
		if r.Type != e.Type || !bytes.Equal(r.Data, e.Data) {
			return fail("stored with other content")
		}
		caller, _, _, err := SplitMetadata(r.Metadata)
		if err != nil || !bytes.Equal(caller, e.Metadata) {
			return fail("stored with other metadata")
		}
	}
	last := sorted[len(sorted)-1]
	return AppendResult{NextExpected: last.StreamVersion, Position: last.Position}, nil
}
