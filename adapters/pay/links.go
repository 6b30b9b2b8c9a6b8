package pay

import (
	"context"
	"errors"

	"github.com/payledger/payledger/eventstore"
	"github.com/payledger/payledger/projections/links"
)

type linksIndex struct{ p *links.Projection }

// FromLinks adapts the links projection to LinkIndex.
func FromLinks(p *links.Projection) LinkIndex { return linksIndex{p} }

func (l linksIndex) Lookup(ctx context.Context, hash string) (string, string, error) {
	ln, err := l.p.Lookup(ctx, hash)
	if errors.Is(err, links.ErrNotFound) {
		return "", "", ErrUnknownLink
	}
	if err != nil {
		return "", "", err
	}
	return ln.InvoiceID, ln.LinkID, nil
}

// SyncTo builds a Syncer from the store's head and the read models'
// WaitFor (projections.Set.WaitFor): it waits until everything appended
// before the call is projected.
func SyncTo(head func(context.Context) (eventstore.Position, error), waitFor func(context.Context, eventstore.Position) error) Syncer {
	return SyncFunc(func(ctx context.Context) error {
		pos, err := head(ctx)
		if err != nil {
			return err
		}
		return waitFor(ctx, pos)
	})
}
