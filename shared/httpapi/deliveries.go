package httpapi

import (
	"net/http"
	"strconv"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// deliveriesHandler is a route on one destination's delivery record, after the destination
// was found in the caller's workspace.
type deliveriesHandler func(w http.ResponseWriter, r *http.Request, d workspace.Destination, recs *delivery.Records) error

// deliveries checks the destination belongs to the caller's workspace, then runs h.
func (a *admin) deliveries(h deliveriesHandler) authed {
	return func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
		d, err := a.ws.GetDestination(r.Context(), p, r.PathValue("ws"), r.PathValue("id"))
		if err != nil {
			return err
		}
		if a.records == nil {
			return errcode.New(errcode.Internal, "delivery_not_configured", "this deployment does not deliver to destinations")
		}
		return h(w, r, d, a.records)
	}
}

// limitParam reads ?limit= (1 to delivery.MaxListed; 0 when absent).
func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > delivery.MaxListed {
		return 0, errcode.InvalidField("limit", "must be a whole number from 1 to %d", delivery.MaxListed)
	}
	return n, nil
}

// getDeliveries: GET …/destinations/{id}/deliveries.
func (a *admin) getDeliveries(w http.ResponseWriter, r *http.Request, d workspace.Destination, recs *delivery.Records) error {
	out, err := recs.Deliveries(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// destinationDebugger: GET …/destinations/{id}/debugger?limit= → the latest attempts, newest first.
func (a *admin) destinationDebugger(w http.ResponseWriter, r *http.Request, d workspace.Destination, recs *delivery.Records) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	entries, err := recs.Attempts(r.Context(), d.ID, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
	return nil
}

// listDeadLetters: GET …/destinations/{id}/dead-letters?limit=&after= → a page, oldest first.
func (a *admin) listDeadLetters(w http.ResponseWriter, r *http.Request, d workspace.Destination, recs *delivery.Records) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	if len(after) > 300 {
		return errcode.InvalidField("after", "is not a cursor this API gave")
	}
	page, next, err := recs.DeadLetters(r.Context(), d.ID, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": page, "next": next})
	return nil
}

// replayDeadLetters: POST …/destinations/{id}/dead-letters/replay → {"replayed","more"}.
func (a *admin) replayDeadLetters(w http.ResponseWriter, r *http.Request, d workspace.Destination, recs *delivery.Records) error {
	n, more, err := recs.Replay(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": n, "more": more})
	return nil
}
