package predict

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unifiedprofiles/up/shared/predict/model"
	"github.com/unifiedprofiles/up/shared/profile"
)

// Day numbers, as package model counts them: days since 1970-01-01 UTC.

const secondsPerDay = 24 * 60 * 60

// dayOf is t's day number.
func dayOf(t time.Time) int32 {
	return int32(math.Floor(float64(t.Unix()) / secondsPerDay))
}

// dayStart is the first instant of day d (UTC).
func dayStart(d int32) time.Time { return time.Unix(int64(d)*secondsPerDay, 0).UTC() }

// lastCompleteDay is the day before now's: the last whole day of data.
func lastCompleteDay(now time.Time) int32 { return dayOf(now) - 1 }

// dataset reads the space's profiles into the compact form package model trains on: every
// live, non-anonymous profile (anonymous ones only counted) with its daily activity from
// today − the history the prediction needs (3 × its window) up to today, event names
// interned, and Revenue the goal's money property summed over the goal's events. Profiles'
// daily counts are read by s.loaders at once; the run's progress is recorded every
// s.progressEvery profiles. The Dataset is returned as far as it got, with the error.
func (s *Service) dataset(ctx context.Context, rec record, today int32) (model.Dataset, error) {
	from := today - int32(rec.historyDays())
	since := dayStart(from)
	money := rec.moneyProperty()
	goalEvents := map[string]bool{}
	for _, e := range rec.Goal().Events {
		goalEvents[e] = true
	}

	type loaded struct {
		id        string
		counts    []profile.DayCount
		first     int32 // the profile's first day of activity when older than from, else 0
		anonymous bool
		err       error
	}
	// The history rule asks how far back the space's activity goes, further than the days
	// read: until one profile shows activity from on or before from, each one's first day is
	// looked up (one small query; in a space with that much history, the first profiles
	// settle it).
	var historyShown atomic.Bool
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan profile.Profile)
	results := make(chan loaded)
	var wg sync.WaitGroup
	send := func(l loaded) bool {
		select {
		case results <- l:
			return true
		case <-ctx.Done():
			return false
		}
	}
	wg.Go(func() { // the profiles, one after the other, as the store lists them
		defer close(jobs)
		for p, err := range s.profiles.EachProfile(ctx, rec.SpaceID) {
			if err != nil {
				send(loaded{err: fmt.Errorf("listing the profiles: %w", err)})
				return
			}
			if profile.IsAnonymous(p) {
				if !send(loaded{anonymous: true}) {
					return
				}
				continue
			}
			select {
			case jobs <- p:
			case <-ctx.Done():
				return
			}
		}
	})
	for range s.loaders {
		wg.Go(func() {
			for p := range jobs {
				counts, err := s.profiles.DailyCounts(ctx, rec.SpaceID, p, since)
				if err != nil {
					err = fmt.Errorf("daily counts of profile %s: %w", p.ID, err)
				}
				var first int32
				if err == nil && !historyShown.Load() {
					if len(counts) > 0 && dayOf(counts[0].Day) <= from {
						historyShown.Store(true)
					} else if t, ok, ferr := s.profiles.FirstActivity(ctx, rec.SpaceID, p); ferr != nil {
						err = fmt.Errorf("first activity of profile %s: %w", p.ID, ferr)
					} else if ok && dayOf(t) < from {
						first = dayOf(t)
						historyShown.Store(true)
					}
				}
				if !send(loaded{id: p.ID, counts: counts, first: first, err: err}) {
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()

	var ds model.Dataset
	index := map[string]uint16{}
	var firstErr error
	for l := range results {
		switch {
		case firstErr != nil:
			continue // draining, after cancel
		case l.err != nil:
			firstErr = l.err
			cancel()
			continue
		case l.anonymous:
			ds.Anonymous++
			continue
		}
		if l.first != 0 && (ds.FirstDay == 0 || l.first < ds.FirstDay) {
			ds.FirstDay = l.first
		}
		ds.Profiles = append(ds.Profiles, model.Profile{ID: l.id, Activity: activity(l.counts, from, today, index, &ds.Events, goalEvents, money)})
		if n := len(ds.Profiles); n%s.progressEvery == 0 {
			if err := s.step(ctx, rec, StepLoading, n); err != nil {
				firstErr = err
				cancel()
			}
		}
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	// The loaders' order is not the model's business: profiles by id and events by name make
	// a run repeatable (the same data, the same model).
	slices.SortFunc(ds.Profiles, func(a, b model.Profile) int { return cmp.Compare(a.ID, b.ID) })
	sortEvents(&ds)
	return ds, firstErr
}

// sortEvents renumbers ds's events in name order.
func sortEvents(ds *model.Dataset) {
	order := make([]uint16, len(ds.Events)) // position by name → old index
	for i := range order {
		order[i] = uint16(i)
	}
	slices.SortFunc(order, func(a, b uint16) int { return cmp.Compare(ds.Events[a], ds.Events[b]) })
	renumber := make([]uint16, len(ds.Events)) // old index → new
	names := make([]string, len(ds.Events))
	for pos, old := range order {
		renumber[old], names[pos] = uint16(pos), ds.Events[old]
	}
	ds.Events = names
	for i := range ds.Profiles {
		acts := ds.Profiles[i].Activity
		for j := range acts {
			acts[j].Event = renumber[acts[j].Event]
		}
		slices.SortFunc(acts, byDayThenEvent)
	}
}

func byDayThenEvent(a, b model.Activity) int {
	return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Event, b.Event))
}

// maxEvents is how many distinct event names a Dataset can name (Activity.Event is a uint16).
const maxEvents = math.MaxUint16

// activity turns one profile's daily counts into Activity, ordered by day then event: days
// from..today only (today's own counts are not complete yet), event names interned in
// events (names beyond maxEvents are left out), Revenue the money property's sum for the
// goal's events.
func activity(counts []profile.DayCount, from, today int32, index map[string]uint16, events *[]string, goal map[string]bool, money string) []model.Activity {
	out := make([]model.Activity, 0, len(counts))
	for _, c := range counts {
		d := dayOf(c.Day)
		if d < from || d > today || c.Count <= 0 {
			continue
		}
		ix, ok := index[c.Event]
		if !ok {
			if len(*events) >= maxEvents {
				continue
			}
			ix = uint16(len(*events))
			index[c.Event] = ix
			*events = append(*events, c.Event)
		}
		a := model.Activity{Day: d, Event: ix, Count: int32(min(c.Count, math.MaxInt32))}
		if money != "" && goal[c.Event] {
			a.Revenue = float32(c.Revenue[money])
		}
		out = append(out, a)
	}
	slices.SortFunc(out, byDayThenEvent)
	return out
}
