package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// tailPoll is how often a live tail looks for new debugger entries. Polling the store (not
// an in-process feed) makes the tail see every instance's events, on Lambda as locally.
const tailPoll = 250 * time.Millisecond

func (a *admin) testConnection(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	c, err := a.tracking.TestConnection(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	out := map[string]any{"ok": c.OK, "seen": c.Seen}
	if c.Reason != "" {
		out["reason"] = c.Reason
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// debugger answers the latest entries as JSON, or, for Accept: text/event-stream, a live
// tail: the latest entries, then each new one as it arrives, until the client goes away.
func (a *admin) debugger(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return errcode.InvalidField("limit", "must be a whole number")
		}
		if n == 0 {
			return errcode.InvalidField("limit", "must be between 1 and 500")
		}
		limit = n
	}
	ws, src, search := r.PathValue("ws"), r.PathValue("src"), q.Get("search")
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		entries, err := a.tracking.Debugger(r.Context(), p, ws, src, search, limit)
		if err != nil {
			return err
		}
		if entries == nil {
			entries = []tracking.Entry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
		return nil
	}
	// Errors (forbidden, not found) are answered before the stream starts.
	// A reconnecting EventSource sends the last id it saw: resume after it.
	cursor := r.Header.Get("Last-Event-ID")
	entries, err := a.tracking.DebuggerSince(r.Context(), p, ws, src, cursor, search)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w) // reaches the flusher through the logging wrapper
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": live tail of the source's debugger\n\n")

	tick := time.NewTicker(tailPoll)
	defer tick.Stop()
	for {
		for _, e := range entries {
			b, err := json.Marshal(e)
			if err != nil {
				return nil
			}
			fmt.Fprintf(w, "id: %s\nevent: entry\ndata: %s\n\n", e.Cursor, b)
			cursor = e.Cursor
		}
		if err := rc.Flush(); err != nil {
			return nil // cannot stream here (API Gateway buffers): the client got what there was
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
		}
		if entries, err = a.tracking.DebuggerSince(r.Context(), p, ws, src, cursor, search); err != nil {
			return nil // the stream has started: nothing to answer with, the client reconnects
		}
	}
}
