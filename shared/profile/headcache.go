package profile

import (
	"slices"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
)

// headCacheBytes bounds the memory the heads a Service caches take, about: the tracking
// function runs in 256 MB. A head with a few identifiers takes under a kilobyte.
const headCacheBytes = 32 << 20

// headCache keeps the heads of the profiles a Service read lately, so that a returning
// visitor's profile is not decoded again for each of its messages. An entry is keyed by the
// profile's store key and holds the version it was decoded from. Every write of a profile
// is a ReplaceOp, which gives it a new version, so a head cached at the version just read
// was decoded from the very bytes read, whichever instance wrote them.
//
// Two generations bound it: heads go into cur; when cur holds half of headCacheBytes it
// becomes prev and the old prev is dropped, and a head found in prev moves back to cur.
type headCache struct {
	mu        sync.Mutex
	cur, prev map[store.Key]cachedHead
	curBytes  int // what cur's entries take, about
}

type cachedHead struct {
	version int64
	head    *profileHead // never changed once cached: readers take a copy (profileHead.profile)
	bytes   int
}

// get returns the head of the profile at k as of version, if cached.
func (c *headCache) get(k store.Key, version int64) (*profileHead, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[k]; ok {
		if e.version != version {
			return nil, false
		}
		return e.head, true
	}
	e, ok := c.prev[k]
	if !ok || e.version != version {
		return nil, false
	}
	c.add(k, e)
	return e.head, true
}

// put caches h, the head of the profile at k as of version. h must not change afterwards.
func (c *headCache) put(k store.Key, version int64, h *profileHead) {
	if version <= 0 { // not a version a ReplaceOp wrote
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[k]; ok && e.version > version { // a slower reader's older copy
		return
	}
	c.add(k, cachedHead{version: version, head: h, bytes: headBytes(k, h)})
}

func (c *headCache) add(k store.Key, e cachedHead) {
	old, ok := c.cur[k]
	if !ok && c.curBytes+e.bytes > headCacheBytes/2 {
		c.prev, c.cur, c.curBytes = c.cur, nil, 0
	}
	if c.cur == nil {
		c.cur = make(map[store.Key]cachedHead)
	}
	c.curBytes += e.bytes - old.bytes
	c.cur[k] = e
}

// headBytes is about what the entry of h at k takes: the map's slot, the head, its strings
// and identifiers (calibrated against runtime.MemStats).
func headBytes(k store.Key, h *profileHead) int {
	n := 320 + len(k.PK) + len(k.SK) + len(h.ID) + len(h.SpaceID) + len(h.MergedInto) + len(h.First.ID) +
		len(h.First.Type) + len(h.First.SourceID)
	for _, id := range h.Identifiers {
		n += 125 + len(id.Type) + len(id.Value) + len(id.SourceID)
	}
	return n
}

// headOf is p's head as decoding p's stored JSON gives it: its own copy of the identifiers,
// and times as decoded ones are (no monotonic clock reading, which Compare would otherwise
// use between two heads cached this way).
func headOf(p *Profile) *profileHead {
	h := &profileHead{ID: p.ID, SpaceID: p.SpaceID, MergedInto: p.MergedInto, CreatedAt: asDecoded(p.CreatedAt),
		Identifiers: slices.Clone(p.Identifiers), Merges: p.Merges, First: p.First}
	h.First.At = asDecoded(h.First.At)
	for i := range h.Identifiers {
		h.Identifiers[i].FirstSeen = asDecoded(h.Identifiers[i].FirstSeen)
	}
	return h
}

// asDecoded is t as its JSON decodes: UTC as UTC() makes it, any other zone without the
// monotonic reading.
func asDecoded(t time.Time) time.Time {
	if t.Location() == time.UTC {
		return t.UTC()
	}
	return t.Round(0)
}

// profile is the head as a Profile of its own: the identifiers are copied, so nothing done
// to the Profile reaches a cached head.
func (h *profileHead) profile() Profile {
	return Profile{ID: h.ID, SpaceID: h.SpaceID, MergedInto: h.MergedInto, CreatedAt: h.CreatedAt,
		Identifiers: slices.Clone(h.Identifiers), Merges: h.Merges, First: h.First}
}
