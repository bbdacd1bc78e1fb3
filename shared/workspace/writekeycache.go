package workspace

import (
	"sync"
	"time"
)

// writeKeyTTL is how long an instance trusts the source a write key named when it last read
// it. Every Tracking API request authenticates: at 10,000 single-message requests a second
// into one source (a website's analytics.js sends one message per request), a read of the
// write key's item each time would take that one key's DynamoDB partition past its 3,000
// RCU. Cached, it costs each warm instance a read or two a second. A source disabled or
// deleted through this instance stops at once; through another, within writeKeyTTL.
const writeKeyTTL = time.Second

// maxCachedWriteKeys bounds the cache; past it, it starts again empty.
const maxCachedWriteKeys = 10_000

// writeKeyCache maps a write key's hash to its enabled source, as read at a time.
type writeKeyCache struct {
	mu  sync.Mutex
	m   map[string]cachedSource
	gen uint64 // counts forget calls: a read that started before one is not cached
}

type cachedSource struct {
	src  Source
	read time.Time
}

// get returns the source cached for hash, if read less than writeKeyTTL before now, and the
// generation a read made now must hand to put.
func (c *writeKeyCache) get(hash string, now time.Time) (Source, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[hash]
	if !ok || now.Sub(e.read) >= writeKeyTTL || now.Before(e.read) {
		return Source{}, c.gen, false
	}
	return e.src, c.gen, true
}

// put caches src, read at read, unless a source changed here since (gen is stale).
func (c *writeKeyCache) put(hash string, src Source, read time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedWriteKeys {
		c.m = map[string]cachedSource{}
	}
	c.m[hash] = cachedSource{src: src, read: read}
}

// forget drops every entry: a source changed through this instance.
func (c *writeKeyCache) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
	c.gen++
}
