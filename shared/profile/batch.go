package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/traits"
)

// Result says what Apply did.
type Result struct {
	ProfileID  string
	Created    bool
	Added      []identity.Identifier
	Merged     []string // profiles merged into ProfileID
	Violations []identity.Violation
	// Duplicate: the messageId was applied before and nothing changed now; ProfileID and
	// Created say what the first application did.
	Duplicate bool
}

// Outcome is what ApplyMany did with one message: Err is nil, a refusal (an *errcode.Error of
// kind Invalid: the message carries nothing usable) or, for a message a real failure kept
// from committing, that failure; Skipped marks the messages never tried because of it.
type Outcome struct {
	Result
	Err     error
	Skipped bool
}

// dedupeRecord remembers what a message did, for the answer to its redeliveries.
type dedupeRecord struct {
	ProfileID string `json:"profile_id"`
	Created   bool   `json:"created,omitempty"`
	// Event is the sort key of the message's event when the event was written after the
	// dedupe record rather than with it (a returning visitor: two single writes cost half a
	// transaction). A redelivery finding the record writes the event if it is missing, so a
	// crash between the two writes loses nothing.
	Event string `json:"event,omitempty"`
	// Counted: the message's daily counters were written, so the event written again is
	// marked counted as it would have been (Event.Counted).
	Counted bool `json:"counted,omitempty"`
}

// Apply resolves a normalised message into a space and applies it to exactly one profile:
// identifiers, traits (identify), group links (group), the event and the metadata. It is
// idempotent per messageId for DedupeWindow. It is ApplyMany of one message.
// Errors: invalid_field / too_many_traits / no_identifiers (400); identity_contention (503)
// when the graph kept changing under it — never a silent split.
func (s *Service) Apply(ctx context.Context, spaceID string, m message.Message) (Result, error) {
	outs, err := s.ApplyMany(ctx, spaceID, []message.Message{m})
	if err != nil {
		return Result{}, err
	}
	return outs[0].Result, outs[0].Err
}

// ApplyMany applies msgs to a space as one batch, in their order: every message is resolved
// against one snapshot of the identity graph (one read of all their dedupe keys and claims,
// one of the profiles they point at), each message's writes are one transaction of its own,
// and the store commits them together (bbolt: one commit). Messages whose transaction lost a
// race with another writer, and those that built on them, are tried again on a fresh
// snapshot, with jittered backoff, up to maxAttempts times.
// Refusals do not stop it; any other error does and is returned (the messages it kept from
// committing carry it, or Skipped).
func (s *Service) ApplyMany(ctx context.Context, spaceID string, msgs []message.Message) ([]Outcome, error) {
	out, _, err := s.ApplyManyWith(ctx, spaceID, msgs, nil)
	return out, err
}

// ApplyManyWith is ApplyMany with writes of the caller's that depend on the outcomes (a
// request's debugger entries): with returns them, given the outcomes the first attempt
// plans, and they commit in the same commit as the messages, each on its own, when every
// message commits at that first attempt. written reports whether they did; if not, the
// caller writes them itself, from the final outcomes. Track calls are counted for
// predictions (DailyCounts) only in a space with a registered prediction (ImportManyWith
// counts them in any space).
func (s *Service) ApplyManyWith(ctx context.Context, spaceID string, msgs []message.Message, with func([]Outcome) []store.Op) (out []Outcome, written bool, err error) {
	return s.applyMany(ctx, spaceID, msgs, with, false)
}

// ImportMany is ImportManyWith without writes of the caller's.
func (s *Service) ImportMany(ctx context.Context, spaceID string, msgs []message.Message) ([]Outcome, error) {
	out, _, err := s.ImportManyWith(ctx, spaceID, msgs, nil)
	return out, err
}

// ImportManyWith is ApplyManyWith for the history a workspace brings in (/v1/import): its
// track calls are counted for predictions (DailyCounts) whether or not the space has a
// prediction yet, so one created later reads the history imported, even the part older
// than EventRetention whose events are not kept.
func (s *Service) ImportManyWith(ctx context.Context, spaceID string, msgs []message.Message, with func([]Outcome) []store.Op) (out []Outcome, written bool, err error) {
	return s.applyMany(ctx, spaceID, msgs, with, true)
}

// applyMany is ApplyManyWith, counting every message when imported.
func (s *Service) applyMany(ctx context.Context, spaceID string, msgs []message.Message, with func([]Outcome) []store.Op, imported bool) (out []Outcome, written bool, err error) {
	out = make([]Outcome, len(msgs))
	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	delay := time.Millisecond
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt == maxAttempts {
			for _, i := range todo {
				out[i].Err = contention(spaceID)
			}
			return out, written, nil
		}
		if attempt > 1 {
			// Writers colliding on one profile spread out; 25 attempts take at most about 2 s.
			wait := delay/2 + time.Duration(rand.Int64N(int64(delay/2)+1))
			select {
			case <-ctx.Done():
				skip(out, todo)
				return out, written, ctx.Err()
			case <-time.After(wait):
			}
			delay = min(delay*2, 100*time.Millisecond)
		}
		if err := ctx.Err(); err != nil {
			skip(out, todo)
			return out, written, err
		}
		batch := make([]message.Message, len(todo))
		for j, i := range todo {
			batch[j] = msgs[i]
		}
		var extra func([]Outcome) []store.Op
		if attempt == 0 {
			extra = with
		}
		outs, retry, wrote, err := s.applyOnce(ctx, spaceID, batch, extra, imported)
		if err != nil {
			skip(out, todo)
			return out, written, err
		}
		written = written || wrote
		var next []int
		var failed error
		for j, o := range outs {
			if retry[j] {
				next = append(next, todo[j])
				continue
			}
			out[todo[j]] = o
			if e := errcode.As(o.Err); o.Err != nil && (e == nil || e.Kind != errcode.Invalid) && failed == nil {
				failed = o.Err
			}
		}
		if failed != nil {
			skip(out, next)
			return out, written, failed
		}
		todo = next
	}
	return out, written, nil
}

// skip marks the messages at todo as never tried.
func skip(out []Outcome, todo []int) {
	for _, i := range todo {
		out[i].Skipped = true
	}
}

// loaded is a profile read for this attempt, with its version. Resolution reads only its
// head (decodeHead); the traits, computed states and the rest are decoded (decodeFull) only
// for a message that may change the profile: a returning visitor's page view never pays
// for them.
type loaded struct {
	p       Profile
	version int64
	raw     []byte // the stored profile, until p is decoded in full
}

// profileHead is the part of a stored profile that identity resolution reads. Heads are
// cached (headCache) and shared: a loaded gets a copy.
type profileHead struct {
	ID          string       `json:"id"`
	SpaceID     string       `json:"space_id"`
	MergedInto  string       `json:"merged_into,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	Identifiers []Identifier `json:"identifiers"`
	Merges      int          `json:"merges"`
	First       MessageRef   `json:"first_message"`
}

// decodeHead decodes the head of the profile stored at k, or takes it from heads.
func (l *loaded) decodeHead(heads *headCache, k store.Key) error {
	h, ok := heads.get(k, l.version)
	if !ok {
		h = new(profileHead)
		if err := json.Unmarshal(l.raw, h); err != nil {
			return err
		}
		heads.put(k, l.version, h)
	}
	l.p = h.profile()
	return nil
}

// decodeFull decodes the whole stored profile, once.
func (l *loaded) decodeFull() error {
	if l.raw == nil {
		return nil
	}
	var p Profile
	if err := json.Unmarshal(l.raw, &p); err != nil {
		return fmt.Errorf("decode profile %s: %w", l.p.ID, err)
	}
	l.p, l.raw = p, nil
	return nil
}

// snapshot is the identity graph as one attempt at a batch sees it: what it read, then what
// the batch's earlier messages change.
type snapshot struct {
	spaceID  string
	cfg      spaceConfig
	now      time.Time
	got      map[store.Key]store.Item       // dedupe keys and claims as read
	pointed  map[identity.Identifier]string // claims: read, or made by this batch
	profiles map[string]*loaded             // read or written by this batch, as after its writes so far
	writer   map[string]int                 // profile id → the last transaction of this batch that writes it
	applied  map[string]int                 // messageId → the message of this batch that applies it
	states   map[stateRef]*loadedState      // computed-trait states of the live profiles, as after this batch\'s writes so far
	// count: the batch writes its messages' daily counters (and marks their events
	// counted): it is an import, or the space has a prediction (in the config it read, so
	// this costs no read).
	count bool
}

// plan is what one message of a batch does.
type plan struct {
	out   Outcome
	txs   []int // its transactions in the batch; all must commit
	dupOf int   // ≥ 0: a repeat of that earlier message of the batch
	// repair: the message was applied before but its event may be missing (see dedupeRecord);
	// repairCounted: its counters were written then.
	repair        *store.Key
	repairCounted bool
	retry         bool          // the snapshot was inconsistent for it: try again
	heads         []writtenHead // the profiles it writes, cached once it commits
	// commit is its transaction that commits the dedupe record, once it is planned to
	// apply (-1: refused, a duplicate, or to retry): its daily counts need it.
	commit int
}

// writtenHead is a profile's head as a plan writes it, at the version the write stamps.
type writtenHead struct {
	key     store.Key
	version int64
	head    *profileHead
}

// applyOnce is one attempt at a batch (imported: see ImportManyWith). It returns each
// message's outcome, which of them must be tried again, and a failure that stopped the
// attempt as a whole.
func (s *Service) applyOnce(ctx context.Context, spaceID string, msgs []message.Message, extra func([]Outcome) []store.Op, imported bool) ([]Outcome, []bool, bool, error) {
	cfg, err := s.config(ctx, spaceID)
	if err != nil {
		return nil, nil, false, err
	}
	snap, err := s.read(ctx, spaceID, cfg, msgs)
	if errors.Is(err, errSnapshotMoved) {
		retry := make([]bool, len(msgs))
		for i := range retry {
			retry[i] = true
		}
		return make([]Outcome, len(msgs)), retry, false, nil
	}
	if err != nil {
		return nil, nil, false, err
	}
	snap.count = imported || len(cfg.preds.ids) > 0
	var txs []store.Tx
	plans := make([]plan, len(msgs))
	for i, m := range msgs {
		plans[i] = snap.resolve(s, i, m, &txs)
		if j := plans[i].dupOf; j >= 0 { // what the first did, if it commits
			plans[i].out.Result = Result{ProfileID: plans[j].out.ProfileID, Created: plans[j].out.Created, Duplicate: true}
		}
	}
	if err := s.repair(ctx, msgs, plans, snap, &txs); err != nil {
		return nil, nil, false, err
	}
	msgTxs := len(txs)
	counters := snap.counterTxs(msgs, plans, &txs)
	// The caller's writes, on the outcomes as planned: they hold if every message's
	// transaction commits, so each needs them all (not the counters: see settleCounters).
	extraFrom := len(txs)
	if extra != nil && !slices.ContainsFunc(plans, func(p plan) bool { return p.retry }) {
		all := make([]int, msgTxs)
		for i := range all {
			all[i] = i
		}
		for _, op := range extra(outcomes(plans)) {
			txs = append(txs, store.Tx{Ops: []store.Op{op}, Needs: all})
		}
	}
	if len(txs) > 0 && s.now().Sub(cfg.fetchedAt) > maxAttemptAge {
		// Too old to commit: the computed-trait definitions or prediction registrations read
		// may have changed, and a new trait's backfill (and the counts' backfill:
		// countingGrace) relies on no attempt committing this long after its read.
		s.configs.forget(spaceID)
		retry := make([]bool, len(msgs))
		for i := range retry {
			retry[i] = plans[i].out.Err == nil // all but the refusals
		}
		return outcomes(plans), retry, false, nil
	}
	var errs []error
	if len(txs) > 0 {
		if errs, err = store.TransactBatch(ctx, s.st, txs); err != nil {
			return nil, nil, false, err
		}
	}
	wrote := extraFrom < len(txs)
	for _, err := range errs[extraFrom:] {
		wrote = wrote && err == nil
	}
	if len(counters) > 0 {
		s.settleCounters(ctx, spaceID, counters, errs)
	}
	retry := make([]bool, len(msgs))
	for i := range plans {
		p := &plans[i]
		if p.retry {
			retry[i] = true
			continue
		}
		if p.dupOf >= 0 { // planned as a duplicate of the first: true if the first committed
			retry[i] = retry[p.dupOf]
			p.out.Err = plans[p.dupOf].out.Err
			continue
		}
		committed := true
		for _, t := range p.txs {
			committed = committed && errs[t] == nil
			switch err := errs[t]; {
			case err == nil:
			case store.FailedOp(err) >= 0, errors.Is(err, store.ErrSkipped), errors.Is(err, store.ErrContention):
				// The graph moved since it was read (or the same messageId committed
				// concurrently, which the next attempt reports as a duplicate).
				retry[i] = true
			default:
				if p.out.Err == nil {
					p.out.Err = err
				}
			}
		}
		if committed {
			// The next message of these profiles finds their heads decoded (a changed
			// profile was otherwise decoded again on its next message).
			for _, h := range p.heads {
				s.heads.put(h.key, h.version, h.head)
			}
		}
	}
	return outcomes(plans), retry, wrote, nil
}

func outcomes(plans []plan) []Outcome {
	out := make([]Outcome, len(plans))
	for i, p := range plans {
		out[i] = p.out
	}
	return out
}

// read takes the snapshot a batch resolves against: its dedupe keys and the claims of every
// identifier its messages carry, then the profiles those point at, merge chains followed.
func (s *Service) read(ctx context.Context, spaceID string, cfg spaceConfig, msgs []message.Message) (*snapshot, error) {
	asked := map[store.Key]bool{}
	var keys []store.Key
	var ids []identity.Identifier
	for _, m := range msgs {
		if m.MessageID != "" {
			if k := dedupeKey(spaceID, m.MessageID); !asked[k] {
				asked[k] = true
				keys = append(keys, k)
			}
		}
		found, _ := cfg.rules.Extract(m)
		before := len(keys)
		keys = appendClaimKeys(keys, asked, spaceID, found)
		if len(keys) > before {
			ids = append(ids, found...)
		}
	}
	got := make(map[store.Key]store.Item, len(keys))
	if err := s.getMany(ctx, got, keys); err != nil {
		return nil, err
	}
	// The computed-trait states of the profiles come in the same round trips as the profiles
	// (asked records them too).
	var stateKeys func(pids []string) []store.Key
	if len(cfg.defs.traits) > 0 {
		stateKeys = func(pids []string) []store.Key {
			var keys []store.Key
			for _, pid := range pids {
				for _, t := range cfg.defs.traits {
					k := stateKey(spaceID, pid, t.ID)
					asked[k] = true
					keys = append(keys, k)
				}
			}
			return keys
		}
	}
	owners, profiles, err := s.owners(ctx, spaceID, ids, got, stateKeys)
	if errors.Is(err, errContended) {
		// A claim without its profile: read between two steps of another writer. Resolving
		// without those claims would split identities, so this attempt reads again.
		return nil, errSnapshotMoved
	}
	if err != nil {
		return nil, err
	}
	states := map[stateRef]*loadedState{}
	if len(cfg.defs.traits) > 0 {
		var live []string
		for pid, l := range profiles {
			if l.p.MergedInto == "" {
				live = append(live, pid)
			}
		}
		slices.Sort(live)
		if err := s.readStates(ctx, spaceID, live, cfg.defs.traits, states, got, asked); err != nil {
			return nil, err
		}
	}
	return &snapshot{spaceID: spaceID, cfg: cfg, now: s.now(), got: got, pointed: owners, profiles: profiles,
		writer: map[string]int{}, applied: map[string]int{}, states: states}, nil
}

// errSnapshotMoved: the snapshot caught another writer mid-way; read again.
var errSnapshotMoved = errors.New("profile: the snapshot caught a write mid-way")

// owner returns the live profile that owns id in the snapshot, or "".
func (sn *snapshot) owner(id identity.Identifier) string {
	pid := sn.pointed[id]
	for hops := 0; pid != "" && sn.profiles[pid] != nil && sn.profiles[pid].p.MergedInto != ""; hops++ {
		if hops > identity.MaxMerges+1 {
			return ""
		}
		pid = sn.profiles[pid].p.MergedInto
	}
	return pid
}

// needs returns the transactions of this batch that last wrote the profiles pids.
func (sn *snapshot) needs(pids ...string) []int {
	var n []int
	for _, pid := range pids {
		if t, ok := sn.writer[pid]; ok && !slices.Contains(n, t) {
			n = append(n, t)
		}
	}
	slices.Sort(n)
	return n
}

// resolve decides what one message does on the snapshot, appends its transactions to txs and
// updates the snapshot as if they commit.
func (sn *snapshot) resolve(s *Service, index int, m message.Message, txs *[]store.Tx) plan {
	p := plan{dupOf: -1, commit: -1}
	refuse := func(err error) plan { p.out.Err = err; return p }
	if m.MessageID == "" {
		return refuse(errcode.InvalidField("messageId", "is required to apply a message exactly once"))
	}
	if m.Type == message.Identify && len(m.Traits) >= MaxTraitsPerIdentify {
		return refuse(&errcode.Error{Kind: errcode.Invalid, Code: "too_many_traits", Field: "traits",
			Message: fmt.Sprintf("identify carries %d traits; the limit is fewer than %d", len(m.Traits), MaxTraitsPerIdentify)})
	}
	spaceID, now := sn.spaceID, sn.now
	if j, ok := sn.applied[m.MessageID]; ok {
		p.dupOf = j
		return p
	}
	if dup, ok := sn.got[dedupeKey(spaceID, m.MessageID)]; ok {
		var rec dedupeRecord
		json.Unmarshal(dup.Data, &rec)
		p.out.Result = Result{ProfileID: rec.ProfileID, Created: rec.Created, Duplicate: true}
		if rec.Event != "" {
			p.repair, p.repairCounted = &store.Key{PK: profilePK(spaceID, rec.ProfileID), SK: rec.Event}, rec.Counted
		}
		return p
	}
	if err := sn.cfg.defs.refuseShadowing(m); err != nil {
		return refuse(err)
	}
	if err := sn.cfg.preds.refuseShadowing(m); err != nil {
		return refuse(err)
	}
	ids, blocked := sn.cfg.rules.Extract(m)
	var violations []identity.Violation
	for _, b := range blocked {
		violations = append(violations, identity.Violation{Kind: identity.ViolationBlocked, Identifier: b, At: now,
			Detail: b.String() + " is a blocked value: kept in the payload, not used as an identifier"})
	}
	if len(ids) == 0 {
		return refuse(&errcode.Error{Kind: errcode.Invalid, Code: "no_identifiers",
			Message: "the message carries no usable identifier (userId, anonymousId or a configured identifier; blocked values do not count)"})
	}
	owners := make(map[identity.Identifier]string, len(ids))
	cands := map[string]identity.Candidate{}
	for _, id := range ids { // read extracted them with these rules: every claim was read
		pid := sn.owner(id)
		if pid == "" {
			continue
		}
		if sn.profiles[pid] == nil {
			p.retry = true
			return p
		}
		owners[id] = pid
		cands[pid] = sn.profiles[pid].p.candidate()
	}
	d := identity.NewResolver(sn.cfg.rules).Decide(ids, func(id identity.Identifier) string { return owners[id] }, cands, now)
	violations = append(violations, d.Violations...)

	res := Result{ProfileID: d.Profile, Created: d.Create, Added: d.Add, Merged: d.Merge, Violations: violations}
	if !d.Create && !mayChange(m, d, violations, sn.cfg.defs) {
		return sn.unchanged(p, index, m, ids, d.Profile, res, txs)
	}
	for _, pid := range append([]string{d.Profile}, d.Merge...) {
		if l := sn.profiles[pid]; l != nil {
			if err := l.decodeFull(); err != nil {
				return refuse(err)
			}
		}
	}
	var ops []store.Op
	var target *loaded
	touched := []string{}
	if d.Create {
		res.ProfileID = s.ids.New("prof_")
		target = &loaded{p: Profile{ID: res.ProfileID, SpaceID: spaceID, CreatedAt: now, First: ref(m)}}
	} else {
		// A working copy: the snapshot changes only once the message is planned whole.
		cur := sn.profiles[d.Profile]
		target = &loaded{p: cur.p.clone(), version: cur.version}
		touched = append(touched, d.Profile)
	}
	changed := d.Create || len(d.Add) > 0 || len(d.Merge) > 0 || len(violations) > 0
	var forwards []*loaded
	for _, loser := range d.Merge {
		l := sn.profiles[loser]
		mergeInto(&target.p, &l.p)
		forward := Profile{ID: l.p.ID, SpaceID: spaceID, MergedInto: target.p.ID, CreatedAt: l.p.CreatedAt, UpdatedAt: now, First: l.p.First}
		ops = append(ops, store.ReplaceOp(profileItem(profileKey(spaceID, loser), &forward), l.version))
		forwards = append(forwards, &loaded{p: forward, version: l.version + 1})
		touched = append(touched, loser)
	}
	for _, id := range d.Add {
		target.p.Identifiers = append(target.p.Identifiers, Identifier{Seen: identity.Seen{Identifier: id, FirstSeen: now}, SourceID: m.SourceID})
		ops = append(ops, store.PutOp(item(claimKey(spaceID, id), claim{ProfileID: target.p.ID}), store.MustNotExist))
	}
	if m.Type == message.Identify && applyTraits(&target.p, m.Traits, m.Timestamp) {
		changed = true
	}
	if m.Type == message.Group && m.GroupID != "" && !slices.Contains(target.p.Groups, m.GroupID) {
		if len(target.p.Groups) >= MaxGroups {
			return refuse(&errcode.Error{Kind: errcode.Invalid, Code: "too_many_groups", Field: "groupId",
				Message: fmt.Sprintf("the user already belongs to %d groups, the most a profile keeps; the group call was not applied", MaxGroups)})
		}
		target.p.Groups = append(target.p.Groups, m.GroupID)
		changed = true
	}
	stateOps, states, err := sn.updateStates(m, target.p.ID, d.Create, d.Merge)
	if err != nil {
		return refuse(err)
	}
	needs := sn.needs(touched...)
	if !changed && len(stateOps) == 0 { // it might have changed and did not (an identify repeating its traits)
		return sn.unchanged(p, index, m, ids, target.p.ID, res, txs)
	}
	ops = append(ops, stateOps...)
	if changed {
		target.p.Violations = append(target.p.Violations, violations...)
		if n := len(target.p.Violations); n > MaxViolationsKept {
			target.p.Violations = slices.Clone(target.p.Violations[n-MaxViolationsKept:])
		}
		target.p.UpdatedAt = now
		pItem := profileItem(profileKey(spaceID, target.p.ID), &target.p)
		if err := checkProfileSize(pItem); err != nil {
			return refuse(err)
		}
		ops = append(ops, store.ReplaceOp(pItem, target.version))
	} else {
		// Only states change: the profile must still be the live one they belong to (a merge
		// committing meanwhile would take them elsewhere).
		ops = append(ops, store.CheckVersionOp(profileKey(spaceID, target.p.ID), target.version))
	}
	if EventKept(m, now) {
		evItem := sn.eventItem(eventKey(spaceID, target.p.ID, m.Timestamp, m.MessageID), m, ids, sn.counts(m))
		ops = append(ops, store.PutOp(evItem, store.Always))
	}
	dd := item(dedupeKey(spaceID, m.MessageID), dedupeRecord{ProfileID: target.p.ID, Created: d.Create})
	dd.ExpiresAt = now.Add(DedupeWindow).Unix()
	ops = append(ops, store.PutOp(dd, store.MustNotExist))
	if d.Create {
		ops = append(ops, store.PutOp(store.Item{Key: listKey(spaceID, target.p.ID)}, store.Always))
	}
	if len(ops) > store.MaxOps {
		return refuse(&errcode.Error{Kind: errcode.Invalid, Code: "too_many_identifiers",
			Message: fmt.Sprintf("the message would change %d records at once; send fewer identifiers per message", len(ops))})
	}
	t := len(*txs)
	*txs = append(*txs, store.Tx{Ops: ops, Needs: needs})
	p.txs, p.commit = []int{t}, t
	p.out.Result = res
	// The snapshot as after this transaction.
	if changed {
		target.version++
		sn.profiles[target.p.ID] = target
		if !d.Create { // a new profile's head waits for a read: a CSV of new profiles would fill the cache
			p.heads = append(p.heads, writtenHead{profileKey(spaceID, target.p.ID), target.version, headOf(&target.p)})
		}
	}
	sn.writer[target.p.ID] = t
	for ref, st := range states {
		sn.states[ref] = st
	}
	for _, f := range forwards {
		sn.profiles[f.p.ID] = f
		sn.writer[f.p.ID] = t
		p.heads = append(p.heads, writtenHead{profileKey(spaceID, f.p.ID), f.version, headOf(&f.p)})
	}
	for _, id := range d.Add {
		sn.pointed[id] = target.p.ID
	}
	sn.applied[m.MessageID] = index
	return p
}

// unchanged plans a message that changes nothing on its profile pid (a returning visitor):
// the profile is not even checked (if it was merged away meanwhile, the event stays under
// its id, which the survivor lists in MergedIDs and reads), and instead of a transaction the
// dedupe record commits first, alone, and the event follows it (see dedupeRecord.Event).
// An event too old to keep (EventKept) is not written at all.
func (sn *snapshot) unchanged(p plan, index int, m message.Message, ids []identity.Identifier, pid string, res Result, txs *[]store.Tx) plan {
	rec := dedupeRecord{ProfileID: pid}
	var evItem store.Item
	kept := EventKept(m, sn.now)
	if kept {
		rec.Counted = sn.counts(m)
		evItem = sn.eventItem(eventKey(sn.spaceID, pid, m.Timestamp, m.MessageID), m, ids, rec.Counted)
		rec.Event = evItem.SK
	}
	dd := item(dedupeKey(sn.spaceID, m.MessageID), rec)
	dd.ExpiresAt = sn.now.Add(DedupeWindow).Unix()
	first := len(*txs)
	*txs = append(*txs, store.Tx{Ops: []store.Op{store.PutOp(dd, store.MustNotExist)}, Needs: sn.needs(pid)})
	p.txs, p.commit = []int{first}, first
	if kept {
		*txs = append(*txs, store.Tx{Ops: []store.Op{store.PutOp(evItem, store.Always)}, Needs: []int{first}})
		p.txs = append(p.txs, first+1)
	}
	p.out.Result = res
	sn.applied[m.MessageID] = index
	return p
}

// counts reports whether m's daily counters are written as it is applied (counterTxs), so
// its event is marked counted.
func (sn *snapshot) counts(m message.Message) bool { return sn.count && m.Type == message.Track }

// eventItem is the stored event of m at k; counted marks it as counted (Event.Counted).
func (sn *snapshot) eventItem(k store.Key, m message.Message, ids []identity.Identifier, counted bool) store.Item {
	ev := Event{MessageID: m.MessageID, Type: m.Type, Event: m.Event, Name: m.Name, Timestamp: m.Timestamp,
		ReceivedAt: m.ReceivedAt, SourceID: m.SourceID, Properties: m.Properties, Identifiers: ids, Raw: m.Raw,
		TraitsVersion: sn.cfg.defs.version, Counted: counted}
	// json.Marshal's bytes without its cost (see eventjson.go); it writes what that cannot.
	data, ok := appendEventJSON(make([]byte, 0, 256+len(m.Raw)+64*len(ids)), &ev)
	it := store.Item{Key: k, Data: data}
	if !ok {
		it = item(k, ev)
	}
	it.ExpiresAt = sn.now.Add(EventRetention).Unix()
	return it
}

// repair adds to txs the events of redelivered messages whose dedupe record committed
// without them (a crash between the two writes of a returning visitor's message).
func (s *Service) repair(ctx context.Context, msgs []message.Message, plans []plan, sn *snapshot, txs *[]store.Tx) error {
	var keys []store.Key
	wanted := map[store.Key]bool{} // a set: a batch of N repairs was N² comparisons
	for _, p := range plans {
		if p.repair != nil && !wanted[*p.repair] {
			wanted[*p.repair] = true
			keys = append(keys, *p.repair)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	got := map[store.Key]store.Item{}
	if err := s.getMany(ctx, got, keys); err != nil {
		return err
	}
	for i := range plans {
		p := &plans[i]
		if p.repair == nil {
			continue
		}
		if _, ok := got[*p.repair]; ok {
			continue
		}
		got[*p.repair] = store.Item{} // once per key
		ids, _ := sn.cfg.rules.Extract(msgs[i])
		p.txs = append(p.txs, len(*txs))
		*txs = append(*txs, store.Tx{Ops: []store.Op{store.PutOp(sn.eventItem(*p.repair, msgs[i], ids, p.repairCounted), store.Always)}})
	}
	return nil
}

// clone is a deep copy of p that the batch can change without touching the snapshot.
func (p Profile) clone() Profile {
	c := p
	c.Identifiers = slices.Clone(p.Identifiers)
	c.Traits = maps.Clone(p.Traits)
	c.MergedIDs = slices.Clone(p.MergedIDs)
	c.Violations = slices.Clone(p.Violations)
	c.Groups = slices.Clone(p.Groups)
	return c
}

// MaxProfileBytes is the most a stored profile may hold: DynamoDB refuses items over 400 KB,
// and a profile past it would make every later write of it fail. The rest of the 400 KB is
// room for the item's keys and attributes.
const MaxProfileBytes = 380 * 1024

// checkProfileSize refuses a profile item that would not fit in MaxProfileBytes.
// Errors: profile_too_large (400).
func checkProfileSize(it store.Item) error {
	if n := len(it.Data); n > MaxProfileBytes {
		return &errcode.Error{Kind: errcode.Invalid, Code: "profile_too_large",
			Message: fmt.Sprintf("with this message the profile would take %d bytes; a profile holds at most %d bytes (DynamoDB's 400 KB item limit), so the message was not applied. The profile still takes events that do not grow it: remove traits (set them to null) before adding more", n, MaxProfileBytes)}
	}
	return nil
}

// mayChange reports whether m can change the profile d resolved it to: anything but a
// message that only adds an event to a known profile whose identifiers it already has,
// with no computed trait counting it.
func mayChange(m message.Message, d identity.Decision, violations []identity.Violation, defs compiledTraits) bool {
	if d.Create || len(d.Add) > 0 || len(d.Merge) > 0 || len(violations) > 0 || m.Type == message.Identify || m.Type == message.Group {
		return true
	}
	ev, isTrack := traitEvent(m)
	if !isTrack {
		return false
	}
	for _, t := range defs.traits {
		if t.Definition.Matches(ev) {
			return true
		}
	}
	return false
}

// updateStates plans the computed-trait states of a message on its target profile: every
// trait starts fully backfilled on a created profile (it has no earlier events), each
// merged profile's state joins the target's (and its own item goes, checked against its
// version, so no concurrent writer counts into it unseen), and a track call counts for the
// traits it matches. It returns the writes and the states as after them.
func (sn *snapshot) updateStates(m message.Message, target string, created bool, losers []string) ([]store.Op, map[stateRef]*loadedState, error) {
	if len(sn.cfg.defs.traits) == 0 {
		return nil, nil, nil
	}
	ev, isTrack := traitEvent(m)
	var ops []store.Op
	out := map[stateRef]*loadedState{}
	for _, t := range sn.cfg.defs.traits {
		cur := loadedState{}
		if l := sn.states[stateRef{target, t.ID}]; l != nil && !created {
			cur = loadedState{st: l.st.clone(), version: l.version}
		}
		changed := false
		if created {
			cur.st.Backfilled = &traits.State{}
			changed = true
		}
		for _, loser := range losers {
			ls := sn.states[stateRef{loser, t.ID}]
			if ls == nil {
				ls = &loadedState{}
			}
			cur.st = mergeStates(cur.st, ls.st)
			ops = append(ops, store.Op{Kind: store.Delete, Item: store.Item{Key: stateKey(sn.spaceID, loser, t.ID)}, Cond: store.VersionIs, Version: ls.version})
			changed = true
		}
		if isTrack && t.Definition.Matches(ev) {
			cur.st.Live.Add(t.Definition, ev)
			changed = true
		}
		if !changed {
			continue
		}
		cur.st.Live.Prune(t.Definition, sn.now)
		if cur.st.Backfilled != nil {
			cur.st.Backfilled.Prune(t.Definition, sn.now)
		}
		it, err := stateItem(stateKey(sn.spaceID, target, t.ID), t, cur.st)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, store.ReplaceOp(it, cur.version))
		out[stateRef{target, t.ID}] = &loadedState{st: cur.st, version: cur.version + 1}
		for _, loser := range losers {
			out[stateRef{loser, t.ID}] = &loadedState{} // gone
		}
	}
	return ops, out, nil
}
