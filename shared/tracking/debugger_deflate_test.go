package tracking

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
)

// requestItem is the JSON of the debugger item of a batch of n tracks, as debuggerOps makes it.
func requestItem(n int) []byte {
	it := debuggerItem{}
	for i := range n {
		raw := fmt.Sprintf(`{"type":"track","event":"Product Viewed","messageId":"m-%d","userId":"user-%d","properties":{"sku":%d,"price":19.99}}`, i, i*7, i*13%500)
		it.Entries = append(it.Entries, Entry{Cursor: entryCursor("0000000000000000001#00000000000000ff#0000abcd", i), ReceivedAt: parseReceivedAt,
			Status: StatusAccepted, Raw: rawJSON([]byte(raw)), Normalised: &Normalised{Type: "track", MessageID: fmt.Sprintf("m-%d", i),
				UserID: fmt.Sprintf("user-%d", i*7), Event: "Product Viewed", Timestamp: parseReceivedAt, ReceivedAt: parseReceivedAt},
			Outcome: &EntryOutcome{ProfileID: fmt.Sprintf("prof_%020d", i*7)}})
	}
	return debuggerItemData(store.Key{}, it, 0).Data
}

func deflated(b []byte) []byte {
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return append([]byte{deflatedMarker}, out.Bytes()...)
}

func TestDebuggerItemPacking(t *testing.T) {
	t.Parallel()
	batch := requestItem(100)
	for _, c := range []struct {
		name       string
		json       []byte
		maxStored  int // the packed size may not pass this
		compressed bool
	}{
		{"a single message stays JSON", requestItem(1), len(requestItem(1)), false},
		{"an empty request's item stays JSON", []byte(`{"entries":[]}`), 14, false},
		{"a batch of 100 is a tenth of its JSON or less", batch, len(batch) / 10, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			stored := packDebuggerItem(slices.Clone(c.json))
			if len(stored) > c.maxStored {
				t.Errorf("stored %d bytes of %d bytes of JSON, want at most %d", len(stored), len(c.json), c.maxStored)
			}
			if got := stored[0] == deflatedMarker; got != c.compressed {
				t.Errorf("compressed: %v, want %v", got, c.compressed)
			}
			back, err := unpackDebuggerItem(stored)
			if err != nil || !bytes.Equal(back, c.json) {
				t.Fatalf("unpacked %d bytes (%v), want the %d bytes packed", len(back), err, len(c.json))
			}
		})
	}
	t.Run("damaged or oversized items are errors", func(t *testing.T) {
		t.Parallel()
		for name, stored := range map[string][]byte{
			"truncated":      deflated(batch)[:200],
			"not deflate":    {deflatedMarker, 0xff, 0xff, 0xff},
			"over the limit": deflated(bytes.Repeat([]byte("a"), maxInflated+1)),
		} {
			if got, err := unpackDebuggerItem(stored); err == nil {
				t.Errorf("%s: unpacked %d bytes without an error", name, len(got))
			}
		}
	})
}

// Items written before compression (plain JSON) read back beside compressed ones.
func TestDebuggerReadsItemsStoredBeforeCompression(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(st, nil, nil, Options{})
	old, current := requestItem(30), requestItem(30)
	old = bytes.ReplaceAll(old, []byte(`"m-`), []byte(`"old-`))
	pk := debuggerPK("src-1", 3)
	exp := time.Now().Add(time.Hour).Unix()
	if err := st.Transact(context.Background(),
		store.PutOp(store.Item{Key: store.Key{PK: pk, SK: "0000000000000000001#00000000000000ff#0000abcd"}, Data: old, ExpiresAt: exp}, store.Always),
		store.PutOp(store.Item{Key: store.Key{PK: pk, SK: "0000000000000000000#00000000000000ff#0000abcd"}, Data: packDebuggerItem(current), ExpiresAt: exp}, store.Always),
	); err != nil {
		t.Fatal(err)
	}
	entries, err := s.entries(context.Background(), "src-1", "")
	if err != nil {
		t.Fatal(err)
	}
	var olds, news int
	for _, e := range entries {
		switch id := e.Normalised.MessageID; {
		case strings.HasPrefix(id, "old-"):
			olds++
		case strings.HasPrefix(id, "m-"):
			news++
		}
	}
	if olds != 30 || news != 30 {
		t.Errorf("read %d entries of the plain item and %d of the compressed one, want 30 and 30", olds, news)
	}
}

// Any JSON packs and unpacks to itself; any stored bytes unpack or fail, never panic.
func FuzzDebuggerItemPacking(f *testing.F) {
	f.Add(requestItem(3))
	f.Add(deflated(requestItem(10)))
	f.Add([]byte{deflatedMarker})
	f.Fuzz(func(t *testing.T, b []byte) {
		unpackDebuggerItem(b)
		if len(b) > 0 && b[0] == deflatedMarker {
			return // not JSON: never packed
		}
		back, err := unpackDebuggerItem(packDebuggerItem(slices.Clone(b)))
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("%d bytes packed and unpacked to %d bytes (%v)", len(b), len(back), err)
		}
	})
}
