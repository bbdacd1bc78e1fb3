package bolt_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/store/storetest"
)

func openAt(t *testing.T, now time.Time) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"), bolt.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sortKeys(t *testing.T, s store.Store, pk string, p store.Page) []string {
	t.Helper()
	items, err := s.Query(t.Context(), pk, p)
	if err != nil {
		t.Fatalf("Query %q %#v: %v", pk, p, err)
	}
	out := []string{}
	for _, it := range items {
		if it.PK != pk || string(it.Data) != it.SK {
			t.Fatalf("Query %q %#v returned %#v", pk, p, it)
		}
		out = append(out, it.SK)
	}
	return out
}

// The embedded store takes any bytes in a key, not only UTF-8 (which never holds 0xff): the
// end of a prefix range made of 0xff bytes is found by dropping them, and a descending walk
// from there stays in its partition and prefix. Every combination of prefix, cursor, limit
// and order is compared with a model.
func TestQueryRawBytes(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	s := openAt(t, now)
	data := map[string][]string{
		"P":        {"a", "\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\x01", "\xff\xff", "\xff\xff\x00", "\xff\xff\xff", "\xff\xff\xff\xff"},
		"P\x01":    {"\x00", "a", "\xff"}, // the first partition past every key of "P"
		"P\xff":    {"\xff", "\xff\xff"},  // PK starts with "P"
		"\xff":     {"\xff"},
		"\xff\xff": {"\xff\xff"},
	}
	expired := map[string]bool{"\xff\xff\xff\xff": true, "\xff\x01": true} // in "P"
	var ops []store.Op
	for pk, sks := range data {
		for _, sk := range sks {
			it := store.Item{Key: store.Key{PK: pk, SK: sk}, Data: []byte(sk)}
			if pk == "P" && expired[sk] {
				it.ExpiresAt = now.Unix()
			}
			ops = append(ops, store.PutOp(it, store.Always))
		}
	}
	if err := s.Transact(t.Context(), ops...); err != nil {
		t.Fatal(err)
	}
	// A few cases by hand, then the model.
	for _, tc := range []struct {
		pk   string
		page store.Page
		want []string
	}{
		{"P", store.Page{Prefix: "\xff", Desc: true}, []string{"\xff\xff\xff", "\xff\xff\x00", "\xff\xff", "\xff\x00", "\xff"}},
		{"P", store.Page{Prefix: "\xff\xff", Limit: 1, Desc: true}, []string{"\xff\xff\xff"}},
		{"P", store.Page{Prefix: "\xfe", After: "\xfe\xff", Desc: true}, []string{"\xfe"}},
		{"P", store.Page{Prefix: "\xff", After: "\xff\xff", Desc: true}, []string{"\xff\x00", "\xff"}},
		{"P", store.Page{After: "\xff", Limit: 2, Desc: true}, []string{"\xfe\xff", "\xfe"}},
		{"P", store.Page{Limit: 1, Desc: true}, []string{"\xff\xff\xff"}},
		{"P\xff", store.Page{Desc: true}, []string{"\xff\xff", "\xff"}},
		{"\xff", store.Page{Prefix: "\xff", Desc: true}, []string{"\xff"}},
		{"\xff\xff", store.Page{Desc: true}, []string{"\xff\xff"}},
	} {
		if got := sortKeys(t, s, tc.pk, tc.page); !slices.Equal(got, tc.want) {
			t.Errorf("Query %q %#v = %q, want %q", tc.pk, tc.page, got, tc.want)
		}
	}
	bounds := []string{"", "\x00", "a", "b", "\xfe", "\xfe\xff", "\xff", "\xff\x00", "\xff\x01", "\xff\xff", "\xff\xff\xff", "\xff\xff\xff\xff", "\xff\xff\xff\xff\xff"}
	for pk, sks := range data {
		for _, prefix := range bounds {
			for _, after := range bounds {
				for _, limit := range []int{0, 1, 2} {
					for _, desc := range []bool{false, true} {
						p := store.Page{Prefix: prefix, After: after, Limit: limit, Desc: desc}
						want := storetest.ModelPage(sks, func(sk string) bool { return pk != "P" || !expired[sk] }, p)
						if got := sortKeys(t, s, pk, p); !slices.Equal(got, want) {
							t.Errorf("Query %q %#v = %q, want %q", pk, p, got, want)
						}
					}
				}
			}
		}
	}
}

// Paging backwards through a partition that spans many bbolt pages, between busy
// neighbours, returns every live item once, newest first, and nothing of the neighbours.
func TestQueryDescPaging(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	s := openAt(t, now)
	const n = 3000
	var want []string
	for _, pk := range []string{"SP#a", "SP#", "SP#a#P", "SP#b"} {
		for i := 0; i < n; i += store.MaxOps {
			var ops []store.Op
			for j := i; j < i+store.MaxOps; j++ {
				sk := fmt.Sprintf("E#%06d#%s", j, strings.Repeat("x", j%50))
				it := store.Item{Key: store.Key{PK: pk, SK: sk}, Data: []byte(sk)}
				if j%7 == 3 || j >= n-20 { // scattered expired items, and the newest 20
					it.ExpiresAt = now.Unix() - 1
				} else if pk == "SP#a" {
					want = append(want, sk)
				}
				ops = append(ops, store.PutOp(it, store.Always))
			}
			if err := s.Transact(t.Context(), ops...); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.Reverse(want)
	for _, size := range []int{1, 7, 100, n} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			page := sortKeys(t, s, "SP#a", store.Page{Prefix: "E#", After: after, Limit: size, Desc: true})
			got = append(got, page...)
			if len(page) < size {
				break
			}
			after = page[len(page)-1]
			if pages > n {
				t.Fatalf("page size %d: paging does not end", size)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("page size %d: %d items, want %d (first %q)", size, len(got), len(want), got[:min(3, len(got))])
		}
	}
}
