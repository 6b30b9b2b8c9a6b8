package kurrentdb

import (
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/payledger/payledger/eventstore"
)

// mapError turns a client error into the port's: a failed optimistic
// concurrency check becomes eventstore.ErrWrongVersion, a tombstoned
// stream ErrStreamDeleted, and everything else is returned wrapped with
// the client's error kept for errors.As. It uses errors.As rather than
// esdb.FromError because the client wraps its *esdb.Error in fmt.Errorf on
// several paths, where FromError would see an unknown error.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var esdbErr *esdb.Error
	if errors.As(err, &esdbErr) {
		switch esdbErr.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("%w: %s: %v", eventstore.ErrWrongVersion, op, err)
		case esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("%w: %s: %w", ErrStreamDeleted, op, err)
		}
	}
	if errors.Is(err, ErrClosed) {
		return err
	}
	return fmt.Errorf("eventstore/kurrentdb: %s: %w", op, err)
}

func isCode(err error, code esdb.ErrorCode) bool {
	var esdbErr *esdb.Error
	return errors.As(err, &esdbErr) && esdbErr.Code() == code
}

// gaveUp reports the error of a client that closed itself after its
// discovery failed. (A Store's own Close is caught before any call.)
func gaveUp(err error) bool {
	return isCode(err, esdb.ErrorCodeConnectionClosed)
}
