package delivery

import (
	"context"
	"fmt"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The Segment destinations deliver inside this service: Segment Profiles applies identify
// and track calls to another space of the workspace, Segment Connections forwards every
// message into another source, as if its client had sent it there.

// Applier is the identity entry point (profile.Service).
type Applier interface {
	ApplyMany(ctx context.Context, spaceID string, msgs []message.Message) ([]profile.Outcome, error)
}

// Spaces checks that a space still belongs to the workspace.
type Spaces interface {
	GetSpace(ctx context.Context, p workspace.Principal, wsID, spaceID string) (workspace.Space, error)
}

// parsePayload reads a job's payload back into a message, as the tracking API would. It is
// read as the one message of an import: the message was accepted once, under its own call's
// bounds, and history sent through /v1/import (up to 360 days old, where other calls stop at
// 30) must reach the Segment destinations as well.
func parsePayload(j Job) (message.Message, error) {
	body := make([]byte, 0, len(j.Payload)+12)
	body = append(append(append(body, `{"batch":[`...), j.Payload...), "]}"...)
	req, err := tracking.Parse("import", body, tracking.Env{ReceivedAt: j.AcceptedAt})
	if err != nil {
		return message.Message{}, Permanent(fmt.Errorf("message %s no longer parses: %w", j.MessageID, err))
	}
	if len(req.Messages) != 1 {
		return message.Message{}, Permanent(fmt.Errorf("message %s no longer parses as one %s call", j.MessageID, j.Type))
	}
	m := req.Messages[0].Message
	m.SourceID = j.SourceID
	return m, nil
}

// owner is the principal trusted delivery code acts as, for one workspace.
func owner(ws string) workspace.Principal {
	return workspace.Principal{Kind: workspace.WorkspaceOwner, WorkspaceID: ws}
}

// notFoundIsPermanent makes a not_found error permanent: what it names will not come back.
func notFoundIsPermanent(err error) error {
	if e := errcode.As(err); e != nil && (e.Kind == errcode.NotFound || e.Kind == errcode.Invalid) {
		return Permanent(err)
	}
	return err
}

// NewProfilesSender returns the Segment Profiles sender: identify and track calls go into
// settings.space_id (a space of the destination's workspace); other calls are delivered as
// nothing to do.
func NewProfilesSender(spaces Spaces, profiles Applier) Sender {
	return SenderFunc(func(ctx context.Context, t Target, jobs []Job) error {
		space, _ := t.Settings["space_id"].(string)
		if _, err := spaces.GetSpace(ctx, owner(t.WorkspaceID), t.WorkspaceID, space); err != nil {
			return notFoundIsPermanent(err)
		}
		errs := make([]error, len(jobs))
		var msgs []message.Message
		var at []int
		for i, j := range jobs {
			if j.Type != message.Identify && j.Type != message.Track {
				continue
			}
			m, err := parsePayload(j)
			if err != nil {
				errs[i] = err
				continue
			}
			msgs, at = append(msgs, m), append(at, i)
		}
		if len(msgs) > 0 {
			outs, err := profiles.ApplyMany(ctx, space, msgs)
			if err != nil && outs == nil {
				return err
			}
			for k, o := range outs {
				switch {
				case o.Skipped:
					errs[at[k]] = fmt.Errorf("not applied: %v", err)
				case o.Err != nil:
					errs[at[k]] = notFoundIsPermanent(o.Err)
				}
			}
		}
		return jobErrors(errs)
	})
}

// jobErrors is nil when no job failed, else a *JobErrors.
func jobErrors(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return &JobErrors{Errs: errs}
		}
	}
	return nil
}

// Sources is what the Segment Connections sender needs of the workspace service.
type Sources interface {
	GetSource(ctx context.Context, p workspace.Principal, wsID, srcID string) (workspace.Source, error)
}

// Ingester is the tracking service.
type Ingester interface {
	Ingest(ctx context.Context, src workspace.Source, req tracking.Request) (tracking.Result, error)
}

// NewConnectionsSender returns the Segment Connections sender: every message is ingested
// into settings.source_id as that source's own, with its messageId; it shows in that
// source's debugger and reaches that source's destinations, except Segment Connections
// ones (Job.Hops).
func NewConnectionsSender(sources Sources, tr Ingester) Sender {
	return SenderFunc(func(ctx context.Context, t Target, jobs []Job) error {
		id, _ := t.Settings["source_id"].(string)
		src, err := sources.GetSource(ctx, owner(t.WorkspaceID), t.WorkspaceID, id)
		if err != nil {
			return notFoundIsPermanent(err)
		}
		if !src.Enabled {
			return Permanent(fmt.Errorf("source %s is disabled: enable it, then replay the dead letters", id))
		}
		errs := make([]error, len(jobs))
		req := tracking.Request{Hops: jobs[0].Hops + 1}
		for i, j := range jobs {
			m, err := parsePayload(j)
			if err != nil {
				errs[i] = err
				continue
			}
			req.Messages = append(req.Messages, tracking.Parsed{Index: i, Message: m})
		}
		req.Total = len(jobs)
		if len(req.Messages) > 0 {
			res, err := tr.Ingest(ctx, src, req)
			if err != nil {
				return err // the whole request again: the committed ones come back as duplicates
			}
			for _, r := range res.Rejected {
				errs[r.Index] = Permanent(fmt.Errorf("source %s refused message %s: %s", id, jobs[r.Index].MessageID, r.Message))
			}
		}
		return jobErrors(errs)
	})
}
