package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Lister lists a workspace's destinations (trusted code: no principal).
type Lister interface {
	DestinationsOf(ctx context.Context, wsID string) ([]workspace.Destination, error)
}

// OutboxOptions configure an Outbox.
type OutboxOptions struct {
	Now func() time.Time
	// ConfigTTL is how long a workspace's list of destinations is kept between reads (2 s
	// when 0): a new destination receives messages committed from then on.
	ConfigTTL time.Duration
}

// Outbox hands committed messages to the queue, one job per enabled destination of their
// source. It is the tracking service's Outbox.
type Outbox struct {
	dests Lister
	q     Queue
	now   func() time.Time
	ttl   time.Duration

	mu    sync.Mutex
	lists map[string]cachedList
}

type cachedList struct {
	ds []workspace.Destination
	at time.Time
}

// NewOutbox returns an Outbox putting jobs on q.
func NewOutbox(dests Lister, q Queue, opts OutboxOptions) *Outbox {
	o := &Outbox{dests: dests, q: q, now: opts.Now, ttl: opts.ConfigTTL, lists: map[string]cachedList{}}
	if o.now == nil {
		o.now = time.Now
	}
	if o.ttl <= 0 {
		o.ttl = 2 * time.Second
	}
	return o
}

// destinationsOf returns ws's destinations, cached for ttl.
func (o *Outbox) destinationsOf(ctx context.Context, ws string) ([]workspace.Destination, error) {
	now := o.now()
	o.mu.Lock()
	c, ok := o.lists[ws]
	o.mu.Unlock()
	if ok && now.Sub(c.at) < o.ttl {
		return c.ds, nil
	}
	ds, err := o.dests.DestinationsOf(ctx, ws)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	o.lists[ws] = cachedList{ds: ds, at: now}
	o.mu.Unlock()
	return ds, nil
}

// Takes reports whether destination d receives messages from source src that have been
// forwarded hops times (a forwarded message is never forwarded again).
func Takes(d workspace.Destination, src string, hops int) bool {
	if !d.Enabled || (len(d.SourceIDs) > 0 && !slices.Contains(d.SourceIDs, src)) {
		return false
	}
	return hops == 0 || d.Type != TypeSegmentConnections
}

// Enqueue queues msgs, committed into src, for src's destinations; hops is how many times
// they were forwarded to get here. It returns once the jobs are durable (the caller answers
// its client after that). Nothing to do (no destination) costs one cached lookup.
func (o *Outbox) Enqueue(ctx context.Context, src workspace.Source, msgs []message.Message, hops int) error {
	if len(msgs) == 0 {
		return nil
	}
	ds, err := o.destinationsOf(ctx, src.WorkspaceID)
	if err != nil {
		return fmt.Errorf("read the destinations of %s: %w", src.WorkspaceID, err)
	}
	var to []workspace.Destination
	for _, d := range ds {
		if Takes(d, src.ID, hops) {
			to = append(to, d)
		}
	}
	if len(to) == 0 {
		return nil
	}
	now := o.now().UTC()
	jobs := make([]Job, 0, len(msgs)*len(to))
	for _, m := range msgs {
		payload, err := Payload(m)
		if err != nil {
			return err
		}
		for _, d := range to {
			jobs = append(jobs, Job{WorkspaceID: src.WorkspaceID, DestinationID: d.ID, SourceID: src.ID, MessageID: m.MessageID,
				Type: m.Type, Payload: payload, AcceptedAt: now, Hops: hops})
		}
	}
	return o.q.Enqueue(ctx, jobs)
}

// Payload is a message as destinations get it: the object the client sent, with the fields
// this service set when it accepted it — messageId (kept, or given to a message without
// one), type, timestamp (corrected for the client's clock), receivedAt — and nothing
// re-encoded but the top level.
//
// A message this service made itself (a Reverse ETL record's identify) has no bytes sent:
// its payload is built from its fields, as a Segment client would have sent them.
func Payload(m message.Message) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	set := func(k string, v any) {
		b, err := json.Marshal(v)
		if err == nil {
			obj[k] = b
		}
	}
	if len(m.Raw) > 0 {
		if err := json.Unmarshal(m.Raw, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("message %s: its raw bytes are not a JSON object: %v", m.MessageID, err)
		}
	} else {
		for k, v := range map[string]string{"userId": m.UserID, "anonymousId": m.AnonymousID, "groupId": m.GroupID,
			"previousId": m.PreviousID, "event": m.Event, "name": m.Name} {
			if v != "" {
				set(k, v)
			}
		}
		for k, v := range map[string]map[string]any{"traits": m.Traits, "properties": m.Properties, "context": m.Context, "integrations": m.Integrations} {
			if v != nil {
				set(k, v)
			}
		}
	}
	set("messageId", m.MessageID)
	set("type", m.Type)
	if !m.Timestamp.IsZero() {
		set("timestamp", m.Timestamp.UTC().Format(time.RFC3339Nano))
	}
	if !m.ReceivedAt.IsZero() {
		set("receivedAt", m.ReceivedAt.UTC().Format(time.RFC3339Nano))
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("message %s: encode: %w", m.MessageID, err)
	}
	return b, nil
}
