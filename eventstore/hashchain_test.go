package eventstore_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/payledger/payledger/eventstore"
)

// Golden hashes computed with the shell recipe in the package
// documentation (printf, wc, xxd, sha256sum), not with this package.
const (
	goldenHash1 = "9e6e2ea033e2e1478c83b51f01a8e687288ebf8480e1aab1ccd8e1cccee168f4"
	goldenHash2 = "a73602efbb65192a7c7cf837d89a537db69751f4e3e467b8a3844551f4858ad8"
)

// chain builds a stream the way a backend does.
func chain(t *testing.T, stream string, evs ...eventstore.EventData) []eventstore.RecordedEvent {
	t.Helper()
	var prev []byte
	out := make([]eventstore.RecordedEvent, len(evs))
	for i, e := range evs {
		meta, sum, err := eventstore.ChainMetadata(prev, stream, uint64(i+1), e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = eventstore.RecordedEvent{ID: e.ID, Stream: stream, StreamVersion: uint64(i + 1), Type: e.Type, Data: e.Data, Metadata: meta}
		prev = sum
	}
	return out
}

func golden(t *testing.T) []eventstore.RecordedEvent {
	return chain(t, "invoice-1",
		eventstore.EventData{Type: "invoice.created", Data: []byte(`{"amount":"10.00"}`), Metadata: []byte(`{ "correlation_id" : "c-1" }`)},
		eventstore.EventData{Type: "invoice.paid", Data: []byte(`{ "é": 1 }`)},
	)
}

func TestChainMatchesShellRecipe(t *testing.T) {
	t.Parallel()
	evs := golden(t)
	zero := strings.Repeat("0", 64)
	want := []string{
		`{"correlation_id":"c-1","prev_hash":"` + zero + `","hash":"` + goldenHash1 + `"}`,
		`{"prev_hash":"` + goldenHash1 + `","hash":"` + goldenHash2 + `"}`,
	}
	for i, e := range evs {
		if string(e.Metadata) != want[i] {
			t.Errorf("event %d metadata =\n %s\nwant\n %s", i+1, e.Metadata, want[i])
		}
		h, err := eventstore.HashOf(e)
		if err != nil || hex.EncodeToString(h) != []string{goldenHash1, goldenHash2}[i] {
			t.Errorf("HashOf(event %d) = %x, %v", i+1, h, err)
		}
	}
	if err := eventstore.VerifyStream(evs); err != nil {
		t.Fatal(err)
	}
	caller, prev, hash, err := eventstore.SplitMetadata(evs[0].Metadata)
	if err != nil || string(caller) != `{"correlation_id":"c-1"}` || hex.EncodeToString(prev) != zero || hex.EncodeToString(hash) != goldenHash1 {
		t.Fatalf("SplitMetadata = %s %x %x %v", caller, prev, hash, err)
	}
}

func TestVerifyStreamDetectsTampering(t *testing.T) {
	t.Parallel()
	base := func(t *testing.T) []eventstore.RecordedEvent {
		return chain(t, "s",
			eventstore.EventData{Type: "a", Data: []byte(`{"n":1}`), Metadata: []byte(`{"correlation_id":"x"}`)},
			eventstore.EventData{Type: "b", Data: []byte(`{"n":2}`)},
			eventstore.EventData{Type: "c", Data: []byte(`{"n":3}`)},
			eventstore.EventData{Type: "d", Data: []byte(`{"n":4}`)},
		)
	}
	other := chain(t, "s", eventstore.EventData{Type: "z", Data: []byte(`{}`)}, eventstore.EventData{Type: "z", Data: []byte(`{}`)})
	cases := []struct {
		name    string
		tamper  func([]eventstore.RecordedEvent) []eventstore.RecordedEvent
		version uint64
		reason  string
	}{
		{"edited data", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[1].Data = []byte(`{"n":20}`)
			return e
		}, 2, "hash mismatch"},
		{"whitespace in data", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[1].Data = []byte(`{"n": 2}`)
			return e
		}, 2, "hash mismatch"},
		{"edited type", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].Type = "x"; return e }, 3, "hash mismatch"},
		{"edited caller metadata", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[0].Metadata = []byte(strings.Replace(string(e[0].Metadata), `"x"`, `"y"`, 1))
			return e
		}, 1, "hash mismatch"},
		{"deleted middle event", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { return append(e[:1], e[2:]...) }, 3, "version gap"},
		{"deleted and renumbered", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e = append(e[:1], e[2:]...)
			e[1].StreamVersion, e[2].StreamVersion = 2, 3
			return e
		}, 2, "prev_hash"},
		{"deleted first event", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { return e[1:] }, 2, "starts at version 2"},
		{"swapped in another chain's event", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[1] = other[1]; return e }, 2, "prev_hash"},
		{"rehashed event without relinking", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			// The attacker recomputes event 2's own hash; event 3 still
			// points at the original.
			meta, _, _ := eventstore.ChainMetadata(mustHash(e[0]), "s", 2, eventstore.EventData{Type: "b", Data: []byte(`{"n":200}`)})
			e[1].Data, e[1].Metadata = []byte(`{"n":200}`), meta
			return e
		}, 3, "prev_hash"},
		{"chain fields removed", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[3].Metadata = []byte(`{}`); return e }, 4, "no hash-chain fields"},
		{"uppercase hex", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent {
			e[3].Metadata = []byte(strings.ToUpper(string(e[3].Metadata)))
			return e
		}, 4, "canonical layout"},
		{"other stream mixed in", func(e []eventstore.RecordedEvent) []eventstore.RecordedEvent { e[2].Stream = "t"; return e }, 3, "event of stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := eventstore.VerifyStream(tc.tamper(base(t)))
			var ce *eventstore.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("VerifyStream = %v, want a *ChainError", err)
			}
			if ce.Version != tc.version || !strings.Contains(ce.Error(), tc.reason) {
				t.Fatalf("ChainError = %v (version %d), want version %d and %q", ce, ce.Version, tc.version, tc.reason)
			}
		})
	}
}

func mustHash(e eventstore.RecordedEvent) []byte {
	h, err := eventstore.HashOf(e)
	if err != nil {
		panic(err)
	}
	return h
}

func TestChainMetadataRejects(t *testing.T) {
	t.Parallel()
	for _, m := range []string{`[1]`, `"s"`, `{"hash":"x"}`, `{"\u0068ash":"x"}`, `{"a":1,"prev_hash":"x"}`, `{bad`, `1`} {
		if _, _, err := eventstore.ChainMetadata(nil, "s", 1, eventstore.EventData{Type: "t", Metadata: []byte(m)}); err == nil {
			t.Errorf("metadata %s accepted", m)
		}
	}
	if _, _, err := eventstore.ChainMetadata(make([]byte, 5), "s", 2, eventstore.EventData{Type: "t"}); err == nil {
		t.Error("short previous hash accepted")
	}
}

// FuzzChainRoundTrip: whatever the caller's metadata and data, the stored
// metadata splits back into the canonical caller part and verifies, and
// any change to the data breaks the chain.
func FuzzChainRoundTrip(f *testing.F) {
	f.Add("invoice-1", "t", []byte(`{"a":1}`), []byte(`{"correlation_id":"c"}`))
	f.Add("s", "x", []byte(`[]`), []byte(``))
	f.Add("", "", []byte(`"\u0000"`), []byte(` { "k" : [ 1 , {"h":"}"} ] } `))
	f.Fuzz(func(t *testing.T, stream, typ string, data, meta []byte) {
		e := eventstore.EventData{Type: typ, Data: data, Metadata: meta}
		stored, sum, err := eventstore.ChainMetadata(nil, stream, 1, e)
		if err != nil {
			return // metadata that is not an acceptable object
		}
		caller, prev, hash, err := eventstore.SplitMetadata(stored)
		if err != nil {
			t.Fatalf("SplitMetadata(%q): %v", stored, err)
		}
		canon, err := eventstore.CanonicalMetadata(meta)
		if err != nil || string(caller) != string(canon) || len(prev) != 32 || string(hash) != string(sum) {
			t.Fatalf("split %q: caller %q (want %q), %v", stored, caller, canon, err)
		}
		rec := eventstore.RecordedEvent{Stream: stream, StreamVersion: 1, Type: typ, Data: data, Metadata: stored}
		if err := eventstore.VerifyStream([]eventstore.RecordedEvent{rec}); err != nil {
			t.Fatal(err)
		}
		rec.Data = append(append([]byte(nil), data...), ' ')
		if eventstore.VerifyStream([]eventstore.RecordedEvent{rec}) == nil {
			t.Fatal("changed data verified")
		}
	})
}
