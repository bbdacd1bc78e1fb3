package tracking

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Service ingests parsed tracking requests into their source's space.
type Service struct {
	st       store.Store
	ws       *workspace.Service
	profiles *profile.Service
	now      func() time.Time
	log      *slog.Logger

	mu   sync.Mutex
	seen map[store.Key]bool // "seen" records this process has written (they never change)

	debugSeq atomic.Uint64 // orders this process's debugger items of one instant

	outbox Outbox
}

// Outbox takes committed messages on to their source's destinations (delivery.Outbox).
type Outbox interface {
	// Enqueue returns once msgs, committed into src after hops forwards, are durably queued
	// for delivery.
	Enqueue(ctx context.Context, src workspace.Source, msgs []message.Message, hops int) error
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // time.Now when nil
	Logger *slog.Logger     // slog.Default() when nil
	// Outbox, when set, gets every accepted message once it is committed (destinations).
	Outbox Outbox
}

// New returns a Service; profiles is the identity entry point every ingest path shares.
func New(st store.Store, ws *workspace.Service, profiles *profile.Service, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, ws: ws, profiles: profiles, now: func() time.Time { return now().UTC() }, log: log, seen: map[store.Key]bool{}, outbox: opts.Outbox}
}

// Authenticate returns the enabled source a write key belongs to.
// Errors: invalid_write_key (401).
func (s *Service) Authenticate(ctx context.Context, writeKey string) (workspace.Source, error) {
	return s.ws.SourceByWriteKey(ctx, writeKey)
}

// Outcome is what happened to one accepted message.
type Outcome struct {
	Index int
	profile.Result
}

// Result says what Ingest did with each message of a request.
type Result struct {
	Outcomes []Outcome
	Rejected []Rejection // the parser's rejections and the identity rules' refusals, by index
	// NotKept counts the accepted messages older than profile.EventRetention (only
	// /v1/import takes them): applied (track calls counted), their events not kept. A
	// redelivery (a duplicate) is in it again, so a retried request gets the same answer.
	NotKept int
}

// Ingest applies req's messages, in order, to src's space through the identity entry point:
// each is committed, exactly once per messageId, before Ingest returns. A message the
// identity rules refuse (no usable identifier, too many traits) is rejected like an invalid
// one. Every message, accepted or not, then goes to the source's debugger.
// Errors: anything but a refusal (the store, identity_contention) stops the request there;
// the messages before it are committed and a retry of the whole request skips them.
func (s *Service) Ingest(ctx context.Context, src workspace.Source, req Request) (Result, error) {
	msgs := make([]message.Message, len(req.Messages))
	for i := range req.Messages {
		msgs[i] = req.Messages[i].Message
		msgs[i].SourceID = src.ID
	}
	// The debugger entries commit with the messages when they all commit at the first try
	// (one commit for the request); otherwise they are written after. An import is counted
	// for predictions whatever the space (profile.ImportManyWith).
	apply := s.profiles.ApplyManyWith
	if req.Import {
		apply = s.profiles.ImportManyWith
	}
	var debug func()
	outs, written, ingestErr := apply(ctx, src.SpaceID, msgs, func(outs []profile.Outcome) []store.Op {
		res, applied := summarize(req, outs)
		ops, mark := s.debuggerOps(src, res, applied)
		debug = mark
		return ops
	})
	res, applied := summarize(req, outs)
	if written {
		debug()
	} else if err := s.record(context.WithoutCancel(ctx), src, applied, res); err != nil {
		// The debugger is a troubleshooting view, not a record: a failure to write it must
		// not fail (and so re-send) messages that are already committed.
		s.log.Warn("debugger entries not written", "source", src.ID, "err", err)
	}
	if s.outbox != nil {
		if err := s.enqueue(ctx, src, req, res); err != nil && ingestErr == nil {
			ingestErr = err
		}
	}
	return res, ingestErr
}

// enqueue hands the request's accepted messages to the outbox, duplicates included: a
// duplicate may be the client sending again after a crash between the commit and this
// call, and delivery is at least once (a repeat carries the same messageId). An error fails
// the request, so the client sends again and nothing committed is left undelivered.
func (s *Service) enqueue(ctx context.Context, src workspace.Source, req Request, res Result) error {
	if len(res.Outcomes) == 0 {
		return nil
	}
	byIndex := make(map[int]*Parsed, len(req.Messages))
	for i := range req.Messages {
		byIndex[req.Messages[i].Index] = &req.Messages[i]
	}
	msgs := make([]message.Message, 0, len(res.Outcomes))
	for _, o := range res.Outcomes {
		if pm := byIndex[o.Index]; pm != nil {
			m := pm.Message
			m.SourceID = src.ID
			msgs = append(msgs, m)
		}
	}
	if err := s.outbox.Enqueue(context.WithoutCancel(ctx), src, msgs, req.Hops); err != nil {
		s.log.Error("committed messages not queued for their destinations; the client is asked to send again", "source", src.ID, "err", err)
		return errcode.New(errcode.Unavailable, "delivery_unavailable", "the messages were stored but could not be queued for the destinations; send them again (a message already stored is not applied twice)")
	}
	return nil
}

// seenKey is the record that a source has sent a message of type typ.
func seenKey(srcID, typ string) store.Key { return store.Key{PK: "SEEN#" + srcID, SK: typ} }

// seenOps returns the puts of the "seen" records msgs add for src, once per process: mark
// records them as written, once they are.
func (s *Service) seenOps(srcID string, msgs []*Parsed) (ops []store.Op, mark func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []store.Key
	pk := seenKey(srcID, "").PK
	for _, pm := range msgs {
		k := store.Key{PK: pk, SK: pm.Message.Type} // seenKey(srcID, pm.Message.Type)
		if !s.seen[k] && !slices.Contains(keys, k) {
			keys = append(keys, k)
			ops = append(ops, store.PutOp(store.Item{Key: k, Data: []byte(`{}`)}, store.Always))
		}
	}
	return ops, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, k := range keys {
			s.seen[k] = true
		}
	}
}

// summarize turns ApplyMany's outcomes into the request's result and the messages the
// debugger shows (those applied or refused, not those a failure kept from committing).
func summarize(req Request, outs []profile.Outcome) (Result, []*Parsed) {
	res := Result{Rejected: slices.Clone(req.Rejected), Outcomes: make([]Outcome, 0, len(outs))}
	applied := make([]*Parsed, 0, len(outs)) // pointers: a Parsed is large (copies were 3 % of the allocations)
	for i, o := range outs {
		pm := &req.Messages[i]
		switch e := errcode.As(o.Err); {
		case o.Skipped || (o.Err != nil && (e == nil || e.Kind != errcode.Invalid)):
			continue
		case o.Err != nil:
			res.Rejected = append(res.Rejected, Rejection{Index: pm.Index, Code: e.Code, Message: e.Message, Field: e.Field, Raw: pm.Message.Raw})
		default:
			res.Outcomes = append(res.Outcomes, Outcome{Index: pm.Index, Result: o.Result})
			if !profile.EventKept(pm.Message, pm.Message.ReceivedAt) {
				res.NotKept++
			}
		}
		applied = append(applied, pm)
	}
	slices.SortFunc(res.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
	return res, applied
}

// ConnectionTypes are the message types a connection test reports on.
var ConnectionTypes = []string{message.Page, message.Screen, message.Track, message.Identify}

// Connection is the result of a source's connection test.
type Connection struct {
	OK     bool
	Seen   map[string]bool // per ConnectionTypes
	Reason string          // what is missing when not OK
}

// TestConnection reports whether a source has sent what proves it is installed: a page for
// a website (javascript) source, a screen for a mobile (swift, kotlin) one, any message for
// the others. A pass marks the source connected (its step-2 tile turns complete).
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) TestConnection(ctx context.Context, p workspace.Principal, wsID, srcID string) (Connection, error) {
	src, err := s.ws.GetSource(ctx, p, wsID, srcID)
	if err != nil {
		return Connection{}, err
	}
	keys := make([]store.Key, 0, len(ConnectionTypes)+2)
	for _, typ := range append(ConnectionTypes, message.Group, message.Alias) {
		keys = append(keys, seenKey(src.ID, typ))
	}
	got, err := s.st.GetMany(ctx, keys...)
	if err != nil {
		return Connection{}, err
	}
	c := Connection{Seen: map[string]bool{}}
	anything := false
	for _, k := range keys {
		_, ok := got[k]
		anything = anything || ok
		if k.SK != message.Group && k.SK != message.Alias {
			c.Seen[k.SK] = ok
		}
	}
	switch src.Type {
	case "javascript":
		c.OK, c.Reason = c.Seen[message.Page], "no page call has arrived yet: open a page of the website with the snippet installed"
	case "swift", "kotlin":
		c.OK, c.Reason = c.Seen[message.Screen], "no screen call has arrived yet: open a screen of the app with the SDK installed"
	default:
		c.OK, c.Reason = anything, "no message has arrived yet from this source's write key"
	}
	if c.OK {
		c.Reason = ""
		if _, err := s.ws.MarkConnected(ctx, p, wsID, srcID); err != nil {
			return Connection{}, err
		}
	}
	return c, nil
}
