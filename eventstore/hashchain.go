package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// HashSize is the length of a chain hash in bytes (SHA-256).
const HashSize = sha256.Size

// The stored metadata always ends with this exact suffix (two 64-digit
// lowercase hex values), so the caller's part can be cut off with one sed
// expression and no JSON re-encoding: re-encoding is where canonical forms
// usually stop being reproducible.
const (
	prevKey   = `"prev_hash":"`
	hashKey   = `","hash":"`
	suffixLen = len(prevKey) + 2*HashSize + len(hashKey) + 2*HashSize + len(`"}`)
)

var zeroHash [HashSize]byte

// ChainError reports where a stream's hash chain is broken.
type ChainError struct {
	Stream  string
	Version uint64
	Reason  string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("eventstore: hash chain broken in stream %q at version %d: %s", e.Stream, e.Version, e.Reason)
}

// ChainMetadata computes the chain fields of the event that will be stored
// at version of stream, given the hash of the stream's previous event
// (nil or empty for the first event). It returns the metadata to store (the
// caller's JSON object, compacted, with "prev_hash" and "hash" appended as
// its last members) and the event's hash. The caller's metadata must be a
// JSON object (or empty) that does not use the keys "prev_hash" or "hash".
//
// The hash is SHA-256(prev_hash ‖ canonical bytes), the canonical bytes
// being five netstrings (see the package documentation).
func ChainMetadata(prevHash []byte, stream string, version uint64, e EventData) (metadata []byte, hash []byte, err error) {
	prev, err := prevOrZero(prevHash)
	if err != nil {
		return nil, nil, err
	}
	caller, err := CanonicalMetadata(e.Metadata)
	if err != nil {
		return nil, nil, err
	}
	sum := chainHash(prev, stream, version, e.Type, e.Data, caller)
	metadata = make([]byte, 0, len(caller)+1+suffixLen)
	metadata = append(metadata, caller[:len(caller)-1]...)
	if len(caller) > 2 {
		metadata = append(metadata, ',')
	}
	metadata = append(metadata, prevKey...)
	metadata = hex.AppendEncode(metadata, prev)
	metadata = append(metadata, hashKey...)
	metadata = hex.AppendEncode(metadata, sum)
	metadata = append(metadata, `"}`...)
	return metadata, sum, nil
}

// CanonicalMetadata returns the caller's metadata in the form that is
// hashed and stored: the JSON object compacted (insignificant whitespace
// removed, members and escapes untouched), "{}" for empty or null input.
// Backends use it to compare the content of a re-append.
func CanonicalMetadata(m []byte) ([]byte, error) {
	m = bytes.TrimSpace(m)
	if len(m) == 0 || string(m) == "null" {
		return []byte("{}"), nil
	}
	// Compact also validates; a valid JSON text starting with '{' is an
	// object. This runs on every append, so the member decode below is only
	// paid when a reserved key may be present.
	var buf bytes.Buffer
	buf.Grow(len(m))
	if err := json.Compact(&buf, m); err != nil || m[0] != '{' {
		return nil, fmt.Errorf("eventstore: metadata must be a JSON object: %s", truncate(m))
	}
	if bytes.Contains(m, []byte("hash")) || bytes.Contains(m, []byte(`\u`)) {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(m, &members); err != nil {
			return nil, fmt.Errorf("eventstore: metadata must be a JSON object: %s", truncate(m))
		}
		if _, ok := members["prev_hash"]; ok {
			return nil, errors.New(`eventstore: metadata key "prev_hash" is reserved for the hash chain`)
		}
		if _, ok := members["hash"]; ok {
			return nil, errors.New(`eventstore: metadata key "hash" is reserved for the hash chain`)
		}
	}
	return buf.Bytes(), nil
}

// SplitMetadata takes stored metadata apart into the caller's canonical
// metadata and the chain fields. It fails when the metadata is not in the
// layout ChainMetadata writes, which is itself a sign of tampering.
func SplitMetadata(stored []byte) (caller, prevHash, hash []byte, err error) {
	n := len(stored)
	if n < suffixLen+1 || stored[0] != '{' {
		return nil, nil, nil, errors.New("metadata has no hash-chain fields")
	}
	suffix := stored[n-suffixLen:]
	if !bytes.HasPrefix(suffix, []byte(prevKey)) ||
		!bytes.Equal(suffix[len(prevKey)+2*HashSize:len(prevKey)+2*HashSize+len(hashKey)], []byte(hashKey)) ||
		!bytes.HasSuffix(suffix, []byte(`"}`)) {
		return nil, nil, nil, errors.New("metadata hash-chain fields are not in canonical layout")
	}
	prevHex := suffix[len(prevKey) : len(prevKey)+2*HashSize]
	hashHex := suffix[len(prevKey)+2*HashSize+len(hashKey) : suffixLen-2]
	prevHash, err1 := decodeLowerHex(prevHex)
	hash, err2 := decodeLowerHex(hashHex)
	if err1 != nil || err2 != nil {
		return nil, nil, nil, errors.New("metadata hash-chain fields are not lowercase hex")
	}
	head := stored[:n-suffixLen]
	switch {
	case len(head) == 1: // "{" only: the caller had no metadata
		caller = []byte("{}")
	case head[len(head)-1] == ',':
		caller = make([]byte, 0, len(head))
		caller = append(caller, head[:len(head)-1]...)
		caller = append(caller, '}')
	default:
		return nil, nil, nil, errors.New("metadata hash-chain fields are not in canonical layout")
	}
	return caller, prevHash, hash, nil
}

// LastHash returns the "hash" chain field of stored metadata (what the next
// event's prev_hash must be) without recomputing it.
func LastHash(stored []byte) ([]byte, error) {
	_, _, h, err := SplitMetadata(stored)
	return h, err
}

// HashOf recomputes the hash of a recorded event from its stream, version,
// type, data and metadata, trusting the prev_hash it carries. Compare the
// result with the stored "hash" (VerifyStream does, and also checks links).
func HashOf(e RecordedEvent) ([]byte, error) {
	caller, prev, _, err := SplitMetadata(e.Metadata)
	if err != nil {
		return nil, err
	}
	return chainHash(prev, e.Stream, e.StreamVersion, e.Type, e.Data, caller), nil
}

// VerifyStream checks a whole stream, as returned by ReadStream from version
// 1: versions are 1, 2, 3… without gaps, each prev_hash is the previous
// event's hash (32 zero bytes for the first), and each hash matches the
// event's content. It returns a *ChainError for the first break. Removing
// the newest events of a stream cannot be detected from the stream alone;
// compare its head hash with one recorded elsewhere for that.
func VerifyStream(events []RecordedEvent) error {
	if len(events) == 0 {
		return nil
	}
	v := NewChainVerifier()
	for _, e := range events {
		if e.Stream != events[0].Stream {
			return &ChainError{Stream: events[0].Stream, Version: e.StreamVersion, Reason: fmt.Sprintf("event of stream %q in the sequence", e.Stream)}
		}
		if err := v.Add(e); err != nil {
			return err
		}
	}
	return nil
}

// ChainVerifier checks the chains of many streams from events in any order
// that keeps each stream's own order, such as a ReadAll replay of $all.
// The zero value is not usable; call NewChainVerifier.
type ChainVerifier struct {
	heads map[string]chainHead
}

type chainHead struct {
	version uint64
	hash    []byte
}

// NewChainVerifier returns a verifier that has seen no events.
func NewChainVerifier() *ChainVerifier {
	return &ChainVerifier{heads: make(map[string]chainHead)}
}

// Add checks the next event of its stream; it returns a *ChainError when
// the event does not continue the chain of the events added before it.
func (v *ChainVerifier) Add(e RecordedEvent) error {
	head := v.heads[e.Stream]
	fail := func(format string, args ...any) error {
		return &ChainError{Stream: e.Stream, Version: e.StreamVersion, Reason: fmt.Sprintf(format, args...)}
	}
	if e.StreamVersion != head.version+1 {
		if head.version == 0 {
			return fail("stream starts at version %d, want 1 (events missing)", e.StreamVersion)
		}
		return fail("version gap: after version %d comes %d (event deleted or reordered)", head.version, e.StreamVersion)
	}
	caller, prev, stored, err := SplitMetadata(e.Metadata)
	if err != nil {
		return fail("%v", err)
	}
	want := head.hash
	if want == nil {
		want = zeroHash[:]
	}
	if !bytes.Equal(prev, want) {
		return fail("prev_hash %x does not match the previous event's hash %x", prev, want)
	}
	sum := chainHash(prev, e.Stream, e.StreamVersion, e.Type, e.Data, caller)
	if !bytes.Equal(sum, stored) {
		return fail("hash mismatch: stream, version, type, data or metadata changed after append")
	}
	v.heads[e.Stream] = chainHead{version: e.StreamVersion, hash: sum}
	return nil
}

// Head returns the version and hash of the last event added for stream.
func (v *ChainVerifier) Head(stream string) (version uint64, hash []byte) {
	h := v.heads[stream]
	return h.version, h.hash
}

// Streams returns how many streams the verifier has seen.
func (v *ChainVerifier) Streams() int { return len(v.heads) }

// chainHash is SHA-256(prev ‖ ns(stream) ‖ ns(version) ‖ ns(type) ‖
// ns(data) ‖ ns(metadata)), ns being a netstring "<len>:<bytes>,". The
// length prefixes keep field boundaries unambiguous without escaping.
func chainHash(prev []byte, stream string, version uint64, typ string, data, caller []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	var num [20]byte
	netstring := func(b []byte) {
		h.Write(strconv.AppendInt(num[:0], int64(len(b)), 10))
		h.Write([]byte{':'})
		h.Write(b)
		h.Write([]byte{','})
	}
	netstring([]byte(stream))
	netstring(strconv.AppendUint(nil, version, 10))
	netstring([]byte(typ))
	netstring(data)
	netstring(caller)
	return h.Sum(nil)
}

func prevOrZero(p []byte) ([]byte, error) {
	switch len(p) {
	case 0:
		return zeroHash[:], nil
	case HashSize:
		return p, nil
	default:
		return nil, fmt.Errorf("eventstore: previous hash has %d bytes, want %d", len(p), HashSize)
	}
}

func decodeLowerHex(b []byte) ([]byte, error) {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, errors.New("not lowercase hex")
		}
	}
	return hex.DecodeString(string(b))
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}
