// Package predicttest makes seeded synthetic workspaces for the prediction model's tests and
// benchmark: profiles whose activity follows a latent engagement and spend propensity, with
// a planted future to check predictions against.
package predicttest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/unifiedprofiles/up/shared/predict/model"
)

// DefaultToday is 2026-01-01 as a day number (days since 1970-01-01 UTC).
const DefaultToday int32 = 20454

// Event names, in Dataset.Events order. Purchase carries Revenue. A Config with EventTypes
// n keeps the first n (so "Order Completed" is there from 2 on).
const Purchase = "Order Completed"

// EventNames are the generated event types.
var EventNames = []string{"Page Viewed", Purchase, "Product Viewed", "App Opened", "Product Added", "Email Opened", "Support Ticket"}

const (
	evPage = iota
	evOrder
	evProduct
	evApp
	evAdded
	evEmail
	evSupport
)

// FutureDays is how far Truth's planted future reaches past Today (ltv's window).
const FutureDays = 120

// block is how often, without Signal, every profile's latents are drawn afresh: every
// window a goal may use (15–120 days) is a whole number of blocks counted back from Today,
// so a label window never shares a latent with the history before it.
const block = 15

// Config of a synthetic workspace. Zero values take the defaults.
type Config struct {
	Seed     int64
	Profiles int   // 5,000
	Days     int   // 120: activity on days Today−Days+1 … Today
	Today    int32 // DefaultToday
	// Signal: each profile keeps its latents for ever and some churn (their activity fades
	// over 3 weeks, with more support tickets, then stops), so the past predicts the future.
	// Without it the latents are drawn afresh every 15 days and nobody churns: outcomes in
	// any label window, and the planted future, are independent of the history before.
	Signal bool
	// Anonymous is reported in Dataset.Anonymous (anonymous profiles are never generated).
	Anonymous int
	// EventTypes keeps only the first n of EventNames (0: all 7).
	EventTypes int
}

// Truth is what was planted.
type Truth struct {
	// FutureSpend is each profile's Revenue of Purchase on days Today+1 … Today+120.
	FutureSpend map[string]float64
}

// Generate makes the workspace cfg describes. The same Config gives the same Dataset.
func Generate(cfg Config) (model.Dataset, Truth) {
	if cfg.Profiles == 0 {
		cfg.Profiles = 5000
	}
	if cfg.Days == 0 {
		cfg.Days = 120
	}
	if cfg.Today == 0 {
		cfg.Today = DefaultToday
	}
	nev := len(EventNames)
	if cfg.EventTypes > 0 {
		nev = min(cfg.EventTypes, nev)
	}
	d := model.Dataset{
		Events:    slices.Clone(EventNames[:nev]),
		Profiles:  make([]model.Profile, cfg.Profiles),
		Anonymous: cfg.Anonymous,
	}
	truth := Truth{FutureSpend: make(map[string]float64, cfg.Profiles)}
	first := cfg.Today - int32(cfg.Days) + 1
	src := rand.NewPCG(0, 0)
	r := rand.New(src)
	var buf []model.Activity
	for i := range d.Profiles {
		// One stream per profile: a profile's history does not depend on how many come
		// before it.
		src.Seed(uint64(cfg.Seed), uint64(i))
		u := newUser(r, cfg, first)
		buf = buf[:0]
		for day := first; day <= cfg.Today; day++ {
			u.day(r, day, func(ev int, n int32, rev float32) {
				if ev < nev {
					buf = append(buf, model.Activity{Day: day, Event: uint16(ev), Count: n, Revenue: rev})
				}
			})
		}
		future := 0.0
		for day := cfg.Today + 1; day <= cfg.Today+FutureDays; day++ {
			u.day(r, day, func(ev int, _ int32, rev float32) {
				if ev == evOrder {
					future += float64(rev)
				}
			})
		}
		id := fmt.Sprintf("user-%06d", i)
		// An exact-size copy: the scratch buffer's spare capacity would otherwise be kept
		// per profile (100,000 profiles must fit in the benchmark's memory goal).
		d.Profiles[i] = model.Profile{ID: id, Activity: slices.Clone(buf)}
		truth.FutureSpend[id] = future
	}
	return d, truth
}

// user is one profile's latent state.
type user struct {
	cfg   Config
	e, s  float64 // engagement, spend propensity (standard normal; s correlates with e)
	blk   int32   // without Signal: the block e and s were drawn for
	start int32   // no activity before this day
	churn int32   // nor from this day on (Signal only)
}

func newUser(r *rand.Rand, cfg Config, first int32) *user {
	u := &user{cfg: cfg, blk: math.MinInt32, start: first, churn: math.MaxInt32}
	u.draw(r)
	// Some profiles arrive later, within the first 60 % of the history.
	if r.Float64() < 0.3 {
		u.start = first + int32(r.IntN(max(1, cfg.Days*6/10)))
	}
	if cfg.Signal {
		// The less engaged churn more often, on a day anywhere in the history or the future.
		if r.Float64() < sigmoid(-1-0.8*u.e) {
			u.churn = first + int32(r.IntN(cfg.Days+FutureDays))
		}
	}
	return u
}

func (u *user) draw(r *rand.Rand) {
	u.e = r.NormFloat64()
	u.s = 0.5*u.e + math.Sqrt(0.75)*r.NormFloat64()
}

// day emits one day's activity in event order.
func (u *user) day(r *rand.Rand, day int32, emit func(ev int, n int32, rev float32)) {
	if !u.cfg.Signal {
		// Blocks counted back from Today (floor division, the future too).
		b := (u.cfg.Today - day + block*1000) / block
		if b != u.blk {
			u.blk = b
			u.draw(r)
		}
	}
	if day < u.start || day >= u.churn {
		return
	}
	fade, support := 1.0, 0.02
	if left := u.churn - day; left <= 21 {
		fade = float64(left) / 21
	}
	if u.churn-day <= 30 {
		support = 0.15
	}
	active := r.Float64() < min(0.9, 0.18*math.Exp(0.9*u.e))*fade
	var order int32
	var rev float64
	if active {
		emit(evPage, 1+poisson(r, 1.5*math.Exp(0.3*u.e)), 0)
		if r.Float64() < min(0.8, 0.12*math.Exp(0.8*u.s)) {
			order = 1
			if r.Float64() < 0.1 {
				order = 2
			}
			// One order in ten is free (a voucher, a trial): Revenue 0, so a goal "with the
			// property" differs from one without.
			if r.Float64() >= 0.1 {
				for range order {
					rev += math.Round(math.Exp(3.5+0.4*u.s+0.4*r.NormFloat64())*100) / 100
				}
			}
			emit(evOrder, order, float32(rev))
		}
		if r.Float64() < 0.6 {
			emit(evProduct, 1+poisson(r, 1), 0)
		}
		if r.Float64() < 0.4 {
			emit(evApp, 1, 0)
		}
		if order > 0 || r.Float64() < min(0.9, 0.2*math.Exp(0.5*u.s)) {
			emit(evAdded, 1, 0)
		}
	}
	if r.Float64() < 0.05*math.Exp(0.3*u.e) {
		emit(evEmail, 1, 0)
	}
	if active && r.Float64() < support {
		emit(evSupport, 1, 0)
	}
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// poisson draws from a Poisson distribution of mean l (Knuth; l is small here).
func poisson(r *rand.Rand, l float64) int32 {
	limit, p, k := math.Exp(-l), 1.0, int32(0)
	for {
		p *= r.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}
