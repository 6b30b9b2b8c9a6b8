package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/payledger/payledger/eventstore"
)

// Line is one exported event. Data and Metadata are the stored bytes as
// JSON strings, not embedded JSON: a string survives any JSON tool
// byte for byte (jq -j .data prints exactly what was hashed), while
// embedded JSON would be re-formatted by the first tool that touches it.
type Line struct {
	// Seq is the event's place in $all, 1 for the first event ever.
	Seq        uint64    `json:"seq"`
	Position   string    `json:"position"`
	ID         string    `json:"id"`
	Stream     string    `json:"stream"`
	Version    uint64    `json:"version"`
	Type       string    `json:"type"`
	RecordedAt time.Time `json:"recorded_at"`
	Data       string    `json:"data"`
	// Metadata is the stored metadata: the caller's members, then
	// prev_hash and hash.
	Metadata string `json:"metadata"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	// Digest is the $all digest after this event (see NextDigest).
	Digest string `json:"digest"`
}

// CSVHeader is the first row of a CSV export; the columns are Line's
// fields in order.
var CSVHeader = []string{"seq", "position", "id", "stream", "version", "type", "recorded_at", "data", "metadata", "prev_hash", "hash", "digest"}

func (l Line) csvRecord() []string {
	return []string{strconv.FormatUint(l.Seq, 10), l.Position, l.ID, l.Stream, strconv.FormatUint(l.Version, 10), l.Type,
		l.RecordedAt.Format(time.RFC3339Nano), l.Data, l.Metadata, l.PrevHash, l.Hash, l.Digest}
}

// ExportOptions select the events of an export.
type ExportOptions struct {
	// From and To bound the events' recorded time: From <= t < To. Zero
	// values do not bound. Seq and Digest are always counted from the
	// first event of $all, so a window's lines continue the full history.
	From, To time.Time
	// Format is "jsonl" (default) or "csv".
	Format    string
	BatchSize int
}

// Export writes every event of $all inside the window, in global order,
// with its hashes and the running digest. It returns the number of lines
// written.
func Export(ctx context.Context, store eventstore.Store, w io.Writer, o ExportOptions) (int, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var write func(Line) error
	switch o.Format {
	case "", "jsonl":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(l Line) error { return enc.Encode(l) }
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
		write = func(l Line) error {
			if err := cw.Write(l.csvRecord()); err != nil {
				return err
			}
			cw.Flush()
			return cw.Error()
		}
	default:
		return 0, fmt.Errorf("audit: export format %q: want jsonl or csv", o.Format)
	}
	digest := ZeroDigest
	var seq uint64
	written := 0
	pos := eventstore.Start
	for {
		batch, err := store.ReadAll(ctx, pos, o.BatchSize)
		if err != nil {
			return written, fmt.Errorf("audit: read $all after %s: %w", pos, err)
		}
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			seq++
			digest = NextDigest(digest, contentHash(e))
			if !o.From.IsZero() && e.RecordedAt.Before(o.From) || !o.To.IsZero() && !e.RecordedAt.Before(o.To) {
				continue
			}
			if err := write(LineOf(seq, e, digest)); err != nil {
				return written, err
			}
			written++
		}
		pos = batch[len(batch)-1].Position
	}
	return written, bw.Flush()
}

// LineOf renders one event; digest is the $all digest after it.
func LineOf(seq uint64, e eventstore.RecordedEvent, digest []byte) Line {
	l := Line{Seq: seq, Position: e.Position.String(), ID: e.ID, Stream: e.Stream, Version: e.StreamVersion, Type: e.Type,
		RecordedAt: e.RecordedAt.UTC(), Data: string(e.Data), Metadata: string(e.Metadata), Digest: hex.EncodeToString(digest)}
	if _, prev, hash, err := eventstore.SplitMetadata(e.Metadata); err == nil {
		l.PrevHash, l.Hash = hex.EncodeToString(prev), hex.EncodeToString(hash)
	}
	return l
}

// contentHash is the event's hash recomputed from its content (trusting
// only the prev_hash it carries), so an export's digest column is what an
// auditor recomputing from the other columns gets.
func contentHash(e eventstore.RecordedEvent) []byte {
	h, err := eventstore.HashOf(e)
	if err != nil {
		return ZeroDigest
	}
	return h
}
