package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// Daily counts are what predictions read of a profile's history: per UTC day and event name,
// how many track calls, and the sums of their money properties. Raw events go after
// EventRetention; the counts are kept CountsRetention, so a model can look back further than
// the events do. Apply writes them with the message that commits the dedupe record, so each
// applied message counts once and a redelivery not at all — but only where they are read:
// in a space with a registered prediction, and for /v1/import (ImportManyWith), how a
// workspace brings its history. Elsewhere they would cost every track call a write unit
// (ARCHITECTURE.md section 6). The events a space stored before its first prediction are
// folded in once by BackfillCounts (countsbackfill.go).

const (
	// CountsRetention is how long a day's counters are kept after that day: three times the
	// longest prediction window (120 days), plus slack.
	CountsRetention = 400 * 24 * time.Hour
	dayLayout       = "20060102" // fixed width: keys sort by day
	// countMax bounds a counter (store.AddOp needs a bound); no real count comes near it.
	countMax = 1 << 62
	// maxCents is the largest money value counted, in cents (about 11 trillion units): a
	// batch of 2,500 messages (the tracking API's most) at it stays below countMax.
	maxCents = 1 << 50
	// maxCountedEventBytes: an event name longer than this is not counted; DynamoDB's sort
	// keys hold at most 1,024 bytes.
	maxCountedEventBytes = 512
	// countsPerRead is how many counters one query of a profile's partition reads.
	countsPerRead = 1000
)

// MoneyProperties are the track properties whose values are summed per day (in cents).
var MoneyProperties = []string{"revenue", "total", "value", "price"}

func dayOf(t time.Time) string { return t.UTC().Format(dayLayout) }

// counterKind is one kind of daily counter: the sort-key prefixes of its counts and of its
// money sums.
type counterKind struct{ count, revenue string }

var (
	// liveCounters are added to as messages are applied (store.AddOp).
	liveCounters = counterKind{count: "DC#", revenue: "DR#"}
	// foldedCounters hold what BackfillCounts found in the stored events that were not counted
	// as they were applied: written whole (a Put), never added to.
	foldedCounters = counterKind{count: "DB#", revenue: "DBR#"}
)

func (k counterKind) countKey(sp, pid, day, event string) store.Key {
	return store.Key{PK: profilePK(sp, pid), SK: k.count + day + "#" + event}
}

func (k counterKind) revenueKey(sp, pid, day, prop, event string) store.Key {
	return store.Key{PK: profilePK(sp, pid), SK: k.revenue + day + "#" + prop + "#" + event}
}

// contribution is one message's change to one counter.
type contribution struct {
	key     store.Key
	expires int64
	delta   int64
}

// contributions are the changes of m, applied to profile pid, to the counters of kind: nothing
// but for a track call whose day is still kept. A negative money value (a refund) is not
// counted: a counter never goes below zero, and a refund is not a purchase.
func contributions(kind counterKind, spaceID, pid string, m message.Message, now time.Time) []contribution {
	if m.Type != message.Track || len(m.Event) > maxCountedEventBytes {
		return nil
	}
	ts := m.Timestamp.UTC()
	day := ts.Format(dayLayout)
	expires := time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC).Add(CountsRetention)
	if !expires.After(now) {
		return nil
	}
	out := []contribution{{key: kind.countKey(spaceID, pid, day, m.Event), expires: expires.Unix(), delta: 1}}
	for _, prop := range MoneyProperties {
		v, ok := number(m.Properties[prop])
		if !ok {
			continue
		}
		cents := math.Round(v * 100)
		if cents <= 0 || cents > maxCents {
			continue
		}
		out = append(out, contribution{key: kind.revenueKey(spaceID, pid, day, prop, m.Event), expires: expires.Unix(), delta: int64(cents)})
	}
	return out
}

// number is v as a number when it is one: JSON decodes numbers as float64, other ingest
// paths may hand Go numbers or json.Number. A string holding digits is not a number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, !math.IsNaN(n) && !math.IsInf(n, 0)
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

// counter is one counter's change in a batch: its messages' contributions summed, written
// by one single-op transaction (an UpdateItem, 1 WU; never part of a TransactWriteItems,
// which costs twice per item).
type counter struct {
	key     store.Key
	expires int64
	delta   int64
	parts   []counterPart
	tx      int // its transaction in the batch
}

// counterPart is one message's share of a counter: its delta and the transaction that
// commits its dedupe record.
type counterPart struct {
	commit int
	delta  int64
}

func (c *counter) op(delta int64) store.Op {
	op := store.AddOp(c.key, delta, countMax)
	op.Item.ExpiresAt = c.expires
	return op
}

// counterTxs adds to txs one transaction per counter the batch's applied messages change,
// each needing the transactions that commit those messages' dedupe records: a message that
// does not commit is not counted, a duplicate never planned one. It adds none where the
// batch does not count (snapshot.count).
func (sn *snapshot) counterTxs(msgs []message.Message, plans []plan, txs *[]store.Tx) []*counter {
	if !sn.count {
		return nil
	}
	var out []*counter
	var byKey map[store.Key]*counter
	for i := range plans {
		p := &plans[i]
		if p.commit < 0 {
			continue
		}
		for _, c := range contributions(liveCounters, sn.spaceID, p.out.ProfileID, msgs[i], sn.now) {
			ctr := byKey[c.key]
			if ctr == nil {
				if byKey == nil {
					byKey = map[store.Key]*counter{}
				}
				ctr = &counter{key: c.key, expires: c.expires}
				byKey[c.key] = ctr
				out = append(out, ctr)
			}
			ctr.delta += c.delta
			ctr.parts = append(ctr.parts, counterPart{commit: p.commit, delta: c.delta})
		}
	}
	for _, ctr := range out {
		var needs []int
		for _, pt := range ctr.parts {
			if !slices.Contains(needs, pt.commit) {
				needs = append(needs, pt.commit)
			}
		}
		slices.Sort(needs)
		ctr.tx = len(*txs)
		*txs = append(*txs, store.Tx{Ops: []store.Op{ctr.op(ctr.delta)}, Needs: needs})
	}
	return out
}

// settleCounters writes again what the batch's counters missed: a counter skipped because
// one of its messages lost a race (that message goes round again and counts then), or
// refused for contention or throttling (nothing written), gets the shares of the messages
// that did commit. Any other failure (its outcome unknown) is logged, not retried, so a
// count is never doubled; the messages themselves are committed and are not failed for it.
func (s *Service) settleCounters(ctx context.Context, spaceID string, counters []*counter, errs []error) {
	var again []store.Tx
	var keys []store.Key
	for _, c := range counters {
		switch err := errs[c.tx]; {
		case err == nil:
		case errors.Is(err, store.ErrSkipped), errors.Is(err, store.ErrContention), errors.Is(err, store.ErrThrottled):
			var d int64
			for _, pt := range c.parts {
				if errs[pt.commit] == nil {
					d += pt.delta
				}
			}
			if d > 0 {
				again = append(again, store.Tx{Ops: []store.Op{c.op(d)}})
				keys = append(keys, c.key)
			}
		default:
			s.log.Warn("a daily counter was not written; the messages are applied, their count is lost", "space", spaceID, "key", c.key.String(), "err", err)
		}
	}
	if len(again) == 0 {
		return
	}
	// The messages are committed: a caller that went away must not lose their counts.
	errs, err := store.TransactBatch(context.WithoutCancel(ctx), s.st, again)
	if err != nil {
		s.log.Warn("daily counters not written; the messages are applied, their counts are lost", "space", spaceID, "counters", len(again), "err", err)
		return
	}
	for i, err := range errs {
		if err != nil {
			s.log.Warn("a daily counter was not written; the messages are applied, their count is lost", "space", spaceID, "key", keys[i].String(), "err", err)
		}
	}
}

// DayCount is one day's count of one event for a profile.
type DayCount struct {
	Day   time.Time // midnight UTC
	Event string
	Count int64
	// Revenue sums each money property (MoneyProperties) present on the day's events, in
	// units (the counters keep cents); nil when none was.
	Revenue map[string]float64
}

// DailyCounts returns a profile's daily counts from the UTC day of since on (counters are
// kept CountsRetention), ordered by day then event, each (day, event) summed over the
// profile and the profiles merged into it (their counters stay under their ids, as their
// events do), and over the counters written as messages were applied and those
// BackfillCounts folded in (each event is in one or the other, never both). The caller has
// checked that the space is the caller's. Reads: three queries per profile id.
func (s *Service) DailyCounts(ctx context.Context, spaceID string, p Profile, since time.Time) ([]DayCount, error) {
	from := dayOf(since)
	type dayEvent struct{ day, event string }
	sums := map[dayEvent]*DayCount{}
	add := func(it store.Item) error {
		var day, rest string
		var ok, money bool
		for _, k := range []counterKind{liveCounters, foldedCounters} {
			if sk, found := strings.CutPrefix(it.SK, k.revenue); found {
				day, rest, ok = splitDayKey(sk)
				money = true
				break
			}
			if sk, found := strings.CutPrefix(it.SK, k.count); found {
				day, rest, ok = splitDayKey(sk)
				break
			}
		}
		if !ok {
			return fmt.Errorf("profile: malformed counter %s", it.Key)
		}
		if day < from {
			return nil // a folded money sum of an earlier day (see the queries below)
		}
		event, prop := rest, ""
		if money {
			if prop, event, ok = strings.Cut(rest, "#"); !ok { // properties hold no '#' (MoneyProperties)
				return fmt.Errorf("profile: malformed counter %s", it.Key)
			}
		}
		k := dayEvent{day, event}
		dc := sums[k]
		if dc == nil {
			d, err := time.Parse(dayLayout, day)
			if err != nil {
				return fmt.Errorf("profile: malformed counter %s", it.Key)
			}
			dc = &DayCount{Day: d, Event: event}
			sums[k] = dc
		}
		if !money {
			dc.Count += it.Count
			return nil
		}
		if dc.Revenue == nil {
			dc.Revenue = map[string]float64{}
		}
		dc.Revenue[prop] += float64(it.Count) / 100
		return nil
	}
	// Each query starts at the cursor "<prefix><day>", which sorts after every earlier day's
	// keys and before the day's own. The folded counters share one query: "DB#" sorts before
	// "DBR#", so it reads the folded counts from the day on, then every folded money sum (few:
	// those of events that were stored when a space's first prediction came), and add leaves
	// out the earlier days'.
	queries := []struct{ prefix, after string }{
		{liveCounters.count, liveCounters.count + from},
		{liveCounters.revenue, liveCounters.revenue + from},
		{foldedPrefix, foldedCounters.count + from},
	}
	for _, pid := range append([]string{p.ID}, p.MergedIDs...) {
		pk := profilePK(spaceID, pid)
		for _, q := range queries {
			for it, err := range s.allItems(ctx, pk, q.prefix, q.after) {
				if err != nil {
					return nil, err
				}
				if err := add(it); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]DayCount, 0, len(sums))
	for _, dc := range sums {
		out = append(out, *dc)
	}
	slices.SortFunc(out, func(a, b DayCount) int {
		if c := a.Day.Compare(b.Day); c != 0 {
			return c
		}
		return strings.Compare(a.Event, b.Event)
	})
	return out, nil
}

// FirstActivity returns the first UTC day a profile (or one merged into it) has counted
// activity on, and false when it has none: a prediction's history is how far back its
// space's activity goes, which the days a run reads (only what its features use) do not say.
// Reads: one single-item query per counter kind and profile id (keys sort by day).
func (s *Service) FirstActivity(ctx context.Context, spaceID string, p Profile) (time.Time, bool, error) {
	first := ""
	for _, pid := range append([]string{p.ID}, p.MergedIDs...) {
		for _, prefix := range []string{liveCounters.count, foldedCounters.count} {
			items, err := s.st.Query(ctx, profilePK(spaceID, pid), store.Page{Prefix: prefix, Limit: 1})
			if err != nil {
				return time.Time{}, false, err
			}
			if len(items) == 0 {
				continue
			}
			day, _, ok := splitDayKey(strings.TrimPrefix(items[0].SK, prefix))
			if !ok {
				return time.Time{}, false, fmt.Errorf("profile: malformed counter %s", items[0].Key)
			}
			if first == "" || day < first {
				first = day
			}
		}
	}
	if first == "" {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(dayLayout, first)
	return t, err == nil, err
}

// splitDayKey splits "<yyyymmdd>#<rest>".
func splitDayKey(s string) (day, rest string, ok bool) {
	if len(s) < len(dayLayout)+1 || s[len(dayLayout)] != '#' {
		return "", "", false
	}
	return s[:len(dayLayout)], s[len(dayLayout)+1:], true
}

// allItems yields the items of partition pk with prefix after the cursor, ascending,
// countsPerRead per query as the caller pulls.
func (s *Service) allItems(ctx context.Context, pk, prefix, after string) iter.Seq2[store.Item, error] {
	return func(yield func(store.Item, error) bool) {
		for {
			items, err := s.st.Query(ctx, pk, store.Page{Prefix: prefix, After: after, Limit: countsPerRead})
			if err != nil {
				yield(store.Item{}, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if len(items) < countsPerRead {
				return
			}
			after = items[len(items)-1].SK
		}
	}
}
