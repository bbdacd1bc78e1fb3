package profile

import (
	"context"
	"errors"
	"sync"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/store"
)

// Outcome is what ApplyMany did with one message: Err is nil, a refusal (an *errcode.Error of
// kind Invalid: the message carries nothing usable) or, for the messages it never reached
// because a real failure stopped it, Skipped.
type Outcome struct {
	Result
	Err     error
	Skipped bool
}

// ApplyMany applies msgs to a space, each like Apply: messages that share an identifier one
// after the other in their order, unrelated ones concurrently (at most workers at once),
// so that their commits share the store's group commits. Refusals do not stop it; any
// other error does (the messages not yet started are Skipped) and is returned. Messages
// that meet on one profile through stored links rather than a shared identifier may run
// concurrently: the version checks keep that correct, as for concurrent requests.
func (s *Service) ApplyMany(ctx context.Context, spaceID string, msgs []message.Message, workers int) ([]Outcome, error) {
	out := make([]Outcome, len(msgs))
	groups, err := s.sameIdentity(ctx, spaceID, msgs)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	work := make(chan []int)
	for range min(max(workers, 1), len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				for _, i := range g {
					if ctx.Err() != nil {
						out[i].Skipped = true
						continue
					}
					res, err := s.Apply(ctx, spaceID, msgs[i])
					out[i] = Outcome{Result: res, Err: err}
					if e := errcode.As(err); err != nil && (e == nil || e.Kind != errcode.Invalid) {
						once.Do(func() { first = err; cancel() })
					}
				}
			}
		}()
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	return out, first
}

// sameIdentity groups the positions of msgs that share an identifier under the space's
// current rules (union-find), each group in message order, groups in order of their first
// message.
func (s *Service) sameIdentity(ctx context.Context, spaceID string, msgs []message.Message) ([][]int, error) {
	rules, err := s.Rules(ctx, spaceID)
	if err != nil {
		return nil, err
	}
	parent := make([]int, len(msgs))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, m := range msgs {
		ids, _ := rules.Extract(m)
		keys := make([]string, 0, len(ids)+1)
		for _, id := range ids {
			keys = append(keys, id.String())
		}
		if m.PreviousID != "" { // an alias joins its previous id's messages
			keys = append(keys, "user_id:"+m.PreviousID, "anonymous_id:"+m.PreviousID)
		}
		for _, k := range keys {
			if j, ok := owner[k]; ok {
				ri, rj := find(i), find(j)
				parent[max(ri, rj)] = min(ri, rj) // the root is the group's first message
			} else {
				owner[k] = i
			}
		}
	}
	at := map[int]int{}
	var groups [][]int
	for i := range msgs {
		r := find(i)
		k, ok := at[r]
		if !ok {
			k = len(groups)
			at[r] = k
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], i)
	}
	return groups, nil
}

// Rules returns a space's identity settings, compiled: what Apply extracts identifiers with.
// A caller that must refuse a message without identifiers up front (a CSV upload, validated
// whole before anything is written) extracts with them.
func (s *Service) Rules(ctx context.Context, spaceID string) (*identity.Compiled, error) {
	it, err := s.st.Get(ctx, settingsKey(spaceID))
	if errors.Is(err, store.ErrNotFound) {
		return s.rules(spaceID, nil)
	}
	if err != nil {
		return nil, err
	}
	return s.rules(spaceID, &it)
}
