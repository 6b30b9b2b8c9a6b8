package kurrentdb

import (
	"maps"
	"sync"
)

// head is what an append to a stream needs to know: the stream's version,
// its last event's hash and the ids of its events (to recognise a
// re-append). Committed events never change, so a cached head is never
// wrong, only possibly behind; the server's exact revision check catches
// that and the store reloads the stream.
type head struct {
	version uint64
	hash    []byte
	ids     map[string]uint64 // event id → version
}

// extend returns a copy of h with room for n more ids; the copy is filled
// by the append and cached only once the server accepted it.
func (h head) extend(n int) head {
	ids := make(map[string]uint64, len(h.ids)+n)
	maps.Copy(ids, h.ids)
	return head{version: h.version + uint64(n), hash: h.hash, ids: ids}
}

// find returns the versions of the ids that are already in the stream.
func (h head) find(ids []string) []uint64 {
	var out []uint64
	for _, id := range ids {
		if v, ok := h.ids[id]; ok {
			out = append(out, v)
		}
	}
	return out
}

// headCache holds the heads of recently used streams and an index from
// event id to stream over them. The index is how an id reused in another
// stream is refused (ErrDuplicateEvent): KurrentDB itself keys idempotency
// per stream, so ids are only known to be unique among the streams this
// process has cached.
type headCache struct {
	mu      sync.Mutex
	streams map[string]head
	byID    map[string]string
}

// headCacheSize bounds memory: ledger streams are short, so the ids of
// this many streams fit in a few tens of megabytes.
const headCacheSize = 1 << 14

func (c *headCache) init() {
	c.streams = make(map[string]head)
	c.byID = make(map[string]string)
}

func (c *headCache) get(stream string) (head, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.streams[stream]
	return h, ok
}

// streamOf reports another cached stream that holds one of ids.
func (c *headCache) streamOf(ids []string, stream string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if s, ok := c.byID[id]; ok && s != stream {
			return s, true
		}
	}
	return "", false
}

func (c *headCache) put(stream string, h head) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.streams[stream]; ok {
		if old.version > h.version {
			return
		}
		c.dropIDs(stream, old)
	}
	if len(c.streams) >= headCacheSize {
		n := 0
		for k, old := range c.streams {
			c.dropIDs(k, old)
			delete(c.streams, k)
			if n++; n >= headCacheSize/8 {
				break
			}
		}
	}
	c.streams[stream] = h
	for id := range h.ids {
		c.byID[id] = stream
	}
}

func (c *headCache) dropIDs(stream string, h head) {
	for id := range h.ids {
		if c.byID[id] == stream {
			delete(c.byID, id)
		}
	}
}
