package workspace

import (
	"testing"
	"time"
)

// A read that began before a source changed on this instance is not cached: it may hold
// what the change undid.
func TestWriteKeyCacheDropsReadsOlderThanAChange(t *testing.T) {
	t.Parallel()
	var c writeKeyCache
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	_, gen, _ := c.get("h", at) // a read starts
	c.forget()                  // the source is disabled meanwhile
	c.put("h", Source{ID: "src_1", Enabled: true}, at, gen)
	if _, _, ok := c.get("h", at); ok {
		t.Fatal("a read older than the change was cached")
	}
	_, gen, _ = c.get("h", at)
	c.put("h", Source{ID: "src_1"}, at, gen)
	if _, _, ok := c.get("h", at.Add(writeKeyTTL-time.Nanosecond)); !ok {
		t.Fatal("a fresh read was not cached")
	}
	if _, _, ok := c.get("h", at.Add(writeKeyTTL)); ok {
		t.Fatal("an entry outlived writeKeyTTL")
	}
}
