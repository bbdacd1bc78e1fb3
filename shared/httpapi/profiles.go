package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The Profile API (ARCHITECTURE.md section 5, PRODUCT.md section 6), compatible with
// Segment's: GET /v1/spaces/{sp}/collections/users/profiles/{type:value}/{resource} with
// the space access token as the HTTP Basic user.

// DefaultProfilesRateLimit is the Profile API's requests per second per space.
const DefaultProfilesRateLimit = 100

// startGrace lets a client compute start as "14 days ago" a moment before we compute the
// oldest allowed start, without getting a 400 for the milliseconds in between.
const startGrace = time.Minute

// profilesPattern takes the identifier and resource as one remainder: API Gateway HTTP APIs
// hand the function a percent-decoded path, so an identifier value with an encoded "/"
// arrives as several segments. paSplitPath takes the last segment as the resource.
const profilesPattern = "/v1/spaces/{sp}/collections/users/profiles/{rest...}"

// ProfilesOptions configure the Profile API.
type ProfilesOptions struct {
	Logger *slog.Logger
	// Now is the clock of the event window and of the rate limiter (time.Now when nil).
	Now func() time.Time
	// RateLimit is the requests per second per space, across every instance; 0 means
	// DefaultProfilesRateLimit.
	RateLimit int
	// Limits is where the per-space budget is counted, shared by every instance. Required.
	Limits store.Store
}

type profilesAPI struct {
	ws        *workspace.Service
	profiles  *profile.Service
	log       *slog.Logger
	now       func() time.Time
	budget    requestBudget
	resources map[string]profileResource
}

// profileResource answers one resource of a profile for an authorised request.
type profileResource func(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error

// MountProfiles adds the Profile API to mux.
func MountProfiles(mux *http.ServeMux, ws *workspace.Service, profiles *profile.Service, opts ProfilesOptions) {
	a := &profilesAPI{ws: ws, profiles: profiles, log: opts.Logger, now: opts.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.budget = newRequestBudget(opts.Limits, "profiles", "Profile API", "space", opts.RateLimit, DefaultProfilesRateLimit, a.now)
	a.resources = map[string]profileResource{
		"traits":       a.traits,
		"external_ids": a.externalIDs,
		"events":       a.events,
		"metadata":     a.metadata,
		"links":        a.links,
	}
	mux.Handle("GET "+profilesPattern, a)
	mux.Handle(profilesPattern, methodNotAllowed([]string{"GET"}))
}

func (a *profilesAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := a.serve(w, r); err != nil {
		writeError(basicChallenge{w, `Basic realm="profiles"`}, r, a.log, err)
	}
}

func (a *profilesAPI) serve(w http.ResponseWriter, r *http.Request) error {
	sp := r.PathValue("sp")
	if err := a.authorize(r, sp); err != nil {
		return err
	}
	// Counted after authorisation, so nobody without the space's token can spend its budget.
	if err := a.budget.take(w, r, sp); err != nil {
		return err
	}
	idText, resource, ok := paSplitPath(r)
	h := a.resources[resource]
	if !ok || h == nil {
		return errcode.NotFoundf("no API at %s %s; profiles have /traits, /external_ids, /events, /metadata and /links", r.Method, r.URL.Path)
	}
	id, err := profile.ParseIdentifier("external_id", idText)
	if err != nil {
		return err
	}
	return h(w, r, sp, id)
}

// authorize checks that the request carries an access token of space sp.
// Errors: unauthorized (401), forbidden (403).
func (a *profilesAPI) authorize(r *http.Request, sp string) error {
	user, pass, ok := r.BasicAuth()
	tok := user
	if tok == "" {
		tok = pass // some clients put a lone secret in the password
	}
	if !ok || tok == "" {
		return errcode.New(errcode.Unauthorized, "unauthorized",
			"send the space access token as the HTTP Basic user with an empty password, e.g. curl -u upa_…: (create one with POST /v1/workspaces/{ws}/spaces/{sp}/access-tokens)")
	}
	p, err := a.ws.Authenticate(r.Context(), tok)
	if e := errcode.As(err); e != nil && e.Kind == errcode.Unauthorized {
		return errcode.New(errcode.Unauthorized, "unauthorized", "the access token is not valid (unknown or revoked)")
	}
	if err != nil {
		return err
	}
	if p.Kind != workspace.SpaceAccess {
		return errcode.New(errcode.Forbidden, "forbidden", "the Profile API takes a space access token (upa_…), not a %s token", p.Kind)
	}
	if p.SpaceID != sp {
		return errcode.New(errcode.Forbidden, "forbidden", "this access token may not read space %s", sp)
	}
	return nil
}

// paSplitPath returns the identifier ("type:value", decoded) and the resource of
// .../profiles/{identifier}/{resource}. It reads the escaped path so that an encoded "/"
// or ":" in the value stays part of the value; a decoded one (API Gateway) still works
// because the resource is always the last segment.
func paSplitPath(r *http.Request) (id, resource string, ok bool) {
	// "", v1, spaces, {sp}, collections, users, profiles, identifier..., resource
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) < 9 {
		return "", "", false
	}
	id, err := url.PathUnescape(strings.Join(parts[7:len(parts)-1], "/"))
	if err != nil {
		return "", "", false
	}
	resource, err = url.PathUnescape(parts[len(parts)-1])
	return id, resource, err == nil
}

// The response shapes (Segment's Profile API).

type paCursor struct {
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Next    string `json:"next"`
}

type paTraits struct {
	Traits map[string]any `json:"traits"`
	Cursor paCursor       `json:"cursor"`
}

type paVerboseTrait struct {
	Value     any       `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

type paExternalID struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	SourceID   string    `json:"source_id"`
	Collection string    `json:"collection"`
	CreatedAt  time.Time `json:"created_at"`
	Encoding   string    `json:"encoding"`
}

type paList[T any] struct {
	Data   []T      `json:"data"`
	Cursor paCursor `json:"cursor"`
}

type paEvent struct {
	Type        string          `json:"type"`
	Event       string          `json:"event,omitempty"`
	Name        string          `json:"name,omitempty"`
	MessageID   string          `json:"message_id"`
	SourceID    string          `json:"source_id"`
	Timestamp   time.Time       `json:"timestamp"`
	Properties  map[string]any  `json:"properties"`
	Context     json.RawMessage `json:"context"`
	ExternalIDs []paExternalID  `json:"external_ids"`
}

type paMetadata struct {
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	FirstMessageAt time.Time `json:"first_message_at"`
	LastMessageAt  time.Time `json:"last_message_at"`
	FirstSourceID  string    `json:"first_source_id"`
	LastSourceID   string    `json:"last_source_id"`
}

type paLink struct {
	ToCollection string         `json:"to_collection"`
	ExternalIDs  []paExternalID `json:"external_ids"`
}

// traits: ?limit=1..200 (10), include=a,b, class=computed_trait|audience, verbose=true, next.
func (a *profilesAPI) traits(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error {
	q := r.URL.Query()
	limit, after, err := paPageParams(q, 200, cursorTraits)
	if err != nil {
		return err
	}
	class := q.Get("class")
	if class != "" && class != "computed_trait" && class != "audience" {
		return errcode.InvalidField("class", "must be computed_trait or audience (or left out for all traits), not %q", class)
	}
	verbose, err := paBool(q, "verbose")
	if err != nil {
		return err
	}
	include := paSet(q, "include")
	p, err := a.profiles.Lookup(r.Context(), sp, id)
	if err != nil {
		return err
	}
	// Custom traits, then computed ones (a computed trait shadows a custom trait of the same
	// key, as in Segment); audiences do not exist yet, so that class is empty.
	all := map[string]profile.Trait{}
	if class == "" {
		for k, t := range p.Traits {
			if !t.Removed {
				all[k] = t
			}
		}
	}
	if class == "" || class == "computed_trait" {
		computed, err := a.profiles.ComputedTraitValues(r.Context(), sp, p)
		if err != nil {
			return err
		}
		for k, v := range computed {
			all[k] = profile.Trait{Value: v, At: p.UpdatedAt}
		}
	}
	var keys []string
	for k := range all {
		if include == nil || include[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	page, more := paPageAfter(keys, limit, func(k string) bool { return after == "" || k > after })
	out := paTraits{Traits: make(map[string]any, len(page))}
	for _, k := range page {
		t := all[k]
		if verbose {
			out.Traits[k] = paVerboseTrait{Value: t.Value, UpdatedAt: t.At}
		} else {
			out.Traits[k] = t.Value
		}
	}
	if more {
		out.Cursor = paPageCursor(r, sp, id, "traits", paEncodeCursor(cursorTraits, page[len(page)-1]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// external_ids: ?limit=1..100 (10), include=type1,type2, next; in first-seen order.
func (a *profilesAPI) externalIDs(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error {
	q := r.URL.Query()
	limit, after, err := paPageParams(q, 100, cursorExternalIDs)
	if err != nil {
		return err
	}
	include := paSet(q, "include")
	p, err := a.profiles.Lookup(r.Context(), sp, id)
	if err != nil {
		return err
	}
	ids := slices.Clone(p.Identifiers)
	// Merged-in identifiers were appended after the survivor's own: order by first sight.
	slices.SortStableFunc(ids, func(x, y profile.Identifier) int { return x.FirstSeen.Compare(y.FirstSeen) })
	ids = slices.DeleteFunc(ids, func(x profile.Identifier) bool { return include != nil && !include[x.Type] })
	start := 0
	if after != "" {
		i := slices.IndexFunc(ids, func(x profile.Identifier) bool { return x.String() == after })
		if i < 0 {
			return paBadCursor()
		}
		start = i + 1
	}
	page, more := paWindow(ids, start, limit)
	out := paList[paExternalID]{Data: make([]paExternalID, len(page))}
	for i, x := range page {
		out.Data[i] = paViewExternalID(x, "users")
	}
	if more {
		out.Cursor = paPageCursor(r, sp, id, "external_ids", paEncodeCursor(cursorExternalIDs, page[len(page)-1].String()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func paViewExternalID(x profile.Identifier, collection string) paExternalID {
	return paExternalID{ID: x.Value, Type: x.Type, SourceID: x.SourceID, Collection: collection, CreatedAt: x.FirstSeen, Encoding: "none"}
}

// events: ?start, end (RFC 3339; end defaults to now, start to 14 days before end, and
// start may be at most 14 days back), include / exclude (event names), sort=desc|asc,
// limit=1..100 (10), next.
func (a *profilesAPI) events(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error {
	q := r.URL.Query()
	limit, after, err := paPageParams(q, 100, cursorEvents)
	if err != nil {
		return err
	}
	var afterAt time.Time
	var afterID string
	if after != "" {
		at, mid, ok := strings.Cut(after, "|")
		if afterAt, err = time.Parse(time.RFC3339Nano, at); !ok || err != nil {
			return paBadCursor()
		}
		afterID = mid
	}
	desc := true
	switch s := q.Get("sort"); s {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return errcode.InvalidField("sort", "must be desc (newest first, the default) or asc, not %q", s)
	}
	include, exclude := paSet(q, "include"), paSet(q, "exclude")

	now := a.now().UTC()
	oldest := now.Add(-profile.EventQueryWindow)
	end, err := paTime(q, "end", now)
	if err != nil {
		return err
	}
	start, err := paTime(q, "start", paLater(end.Add(-profile.EventQueryWindow), oldest))
	if err != nil {
		return err
	}
	if start.Before(oldest.Add(-startGrace)) {
		return errcode.InvalidField("start", "events can be read at most %d days back: use %s or later",
			int(profile.EventQueryWindow/(24*time.Hour)), oldest.Format(time.RFC3339))
	}
	if !end.After(start) {
		return errcode.InvalidField("end", "must be after start, and within the last %d days", int(profile.EventQueryWindow/(24*time.Hour)))
	}
	if q.Get("end") == "" {
		// As every reader does: an event of a sender whose clock runs a little fast (the
		// tracking API keeps up to profile.FutureSkew) shows at once.
		end = end.Add(profile.FutureSkew)
	}

	p, err := a.profiles.Lookup(r.Context(), sp, id)
	if err != nil {
		return err
	}
	// Events come from the store in the page's order, a page at a time: past the cursor,
	// through the filters, one more than the page (to know whether there is a next).
	var page []profile.Event
	if after != "" { // the cursor's event and those before it in this order are not read
		if desc {
			end = paEarlier(end, afterAt.Add(time.Nanosecond))
		} else {
			start = paLater(start, afterAt)
		}
	}
	for e, err := range a.profiles.EventsInOrder(r.Context(), sp, p, start, end, desc) {
		if err != nil {
			return err
		}
		if after != "" {
			c := e.Timestamp.Compare(afterAt)
			if c == 0 {
				c = strings.Compare(e.MessageID, afterID)
			}
			if (desc && c >= 0) || (!desc && c <= 0) {
				continue
			}
		}
		if name := paEventName(e); (include != nil && !include[name]) || exclude[name] {
			continue
		}
		if page = append(page, e); len(page) > limit {
			break
		}
	}
	more := len(page) > limit
	page = page[:min(len(page), limit)]
	out := paList[paEvent]{Data: make([]paEvent, len(page))}
	for i, e := range page {
		out.Data[i] = paViewEvent(e, p)
	}
	if more {
		last := page[len(page)-1]
		out.Cursor = paPageCursor(r, sp, id, "events", paEncodeCursor(cursorEvents, last.Timestamp.UTC().Format(time.RFC3339Nano)+"|"+last.MessageID))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// paEventName is what include and exclude match: a track's event, a page's or screen's name.
func paEventName(e profile.Event) string {
	if e.Event != "" {
		return e.Event
	}
	return e.Name
}

// paRawEvent is the part of a stored raw message the event view shows as received.
type paRawEvent struct {
	Context json.RawMessage `json:"context"`
}

var paEmptyObject = json.RawMessage(`{}`)

// paViewEvent shapes a stored event. Its context is the raw message's, as received; its
// external ids are the identifiers the message carried, dated as the profile first saw them.
func paViewEvent(e profile.Event, p profile.Profile) paEvent {
	v := paEvent{Type: e.Type, Event: e.Event, Name: e.Name, MessageID: e.MessageID, SourceID: e.SourceID,
		Timestamp: e.Timestamp, Properties: e.Properties, Context: paEmptyObject, ExternalIDs: []paExternalID{}}
	if v.Properties == nil {
		v.Properties = map[string]any{}
	}
	var raw paRawEvent
	if len(e.Raw) > 0 && json.Unmarshal(e.Raw, &raw) == nil {
		if t := bytes.TrimSpace(raw.Context); len(t) > 0 && t[0] == '{' {
			v.Context = raw.Context
		}
	}
	for _, x := range e.Identifiers {
		ext := paExternalID{ID: x.Value, Type: x.Type, SourceID: e.SourceID, Collection: "users", CreatedAt: e.Timestamp, Encoding: "none"}
		if i := slices.IndexFunc(p.Identifiers, func(pi profile.Identifier) bool { return pi.Identifier == x }); i >= 0 {
			ext.SourceID, ext.CreatedAt = p.Identifiers[i].SourceID, p.Identifiers[i].FirstSeen
		}
		v.ExternalIDs = append(v.ExternalIDs, ext)
	}
	return v
}

// metadata: when the profile was created and updated, its first message, and its last
// message within the event window (before that: its last update and its first source).
func (a *profilesAPI) metadata(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error {
	p, err := a.profiles.Lookup(r.Context(), sp, id)
	if err != nil {
		return err
	}
	now := a.now()
	// A little ahead, as the explorer reads: clocks of senders run a little fast.
	md := paMetadata{CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, FirstMessageAt: p.First.At, FirstSourceID: p.First.SourceID,
		LastMessageAt: p.UpdatedAt, LastSourceID: p.First.SourceID}
	for e, err := range a.profiles.EventsInOrder(r.Context(), sp, p, now.Add(-profile.EventQueryWindow), now.Add(profile.FutureSkew), true) {
		if err != nil {
			return err
		}
		md.LastMessageAt, md.LastSourceID = e.Timestamp, e.SourceID
		break // the newest is all it needs
	}
	if md.LastMessageAt.Before(md.FirstMessageAt) {
		// The first message is dated after every later one (one stored before timestamps
		// were bounded to their arrival): it is the last as well.
		md.LastMessageAt, md.LastSourceID = md.FirstMessageAt, md.FirstSourceID
	}
	writeJSON(w, http.StatusOK, map[string]paMetadata{"metadata": md})
	return nil
}

// links: the accounts (groups) the user belongs to; ?limit=1..100 (10), next.
func (a *profilesAPI) links(w http.ResponseWriter, r *http.Request, sp string, id identity.Identifier) error {
	q := r.URL.Query()
	limit, after, err := paPageParams(q, 100, cursorLinks)
	if err != nil {
		return err
	}
	p, err := a.profiles.Lookup(r.Context(), sp, id)
	if err != nil {
		return err
	}
	start := 0
	if after != "" {
		i := slices.Index(p.Groups, after)
		if i < 0 {
			return paBadCursor()
		}
		start = i + 1
	}
	page, more := paWindow(p.Groups, start, limit)
	out := paList[paLink]{Data: make([]paLink, len(page))}
	for i, g := range page {
		// The group call that linked them also made the group id an identifier of the user,
		// when the identity rules allowed it: that is when the link was first seen.
		created := p.CreatedAt
		if j := slices.IndexFunc(p.Identifiers, func(x profile.Identifier) bool {
			return x.Type == identity.TypeGroupID && x.Value == g
		}); j >= 0 {
			created = p.Identifiers[j].FirstSeen
		}
		out.Data[i] = paLink{ToCollection: "accounts", ExternalIDs: []paExternalID{
			{ID: g, Type: identity.TypeGroupID, SourceID: "", Collection: "accounts", CreatedAt: created, Encoding: "none"},
		}}
	}
	if more {
		out.Cursor = paPageCursor(r, sp, id, "links", paEncodeCursor(cursorLinks, page[len(page)-1]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Paging.

// Cursor kinds: a cursor of one resource is refused by another.
const (
	cursorTraits      = "t"
	cursorExternalIDs = "x"
	cursorEvents      = "e"
	cursorLinks       = "l"
)

// paEncodeCursor makes the opaque cursor.next: the position of the last item returned.
func paEncodeCursor(kind, position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + position))
}

// paCursorParam returns the position in ?next, "" when absent.
// Errors: invalid_field (400) naming next.
// paPageParams reads a list's paging: limit (1..most, default 10) and the cursor of kind.
func paPageParams(q url.Values, most int, kind string) (limit int, after string, err error) {
	if limit, err = paLimit(q, 10, most); err != nil {
		return 0, "", err
	}
	after, err = paCursorParam(q, kind)
	return limit, after, err
}

func paCursorParam(q url.Values, kind string) (string, error) {
	s := q.Get("next")
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	pos, ok := strings.CutPrefix(string(b), kind+":")
	if err != nil || !ok || pos == "" {
		return "", paBadCursor()
	}
	return pos, nil
}

func paBadCursor() error {
	return errcode.InvalidField("next", "is not a cursor of this list: pass cursor.next of the previous page unchanged, or follow cursor.url")
}

// paPageCursor is the cursor of a page followed by more: the same request from next on.
func paPageCursor(r *http.Request, sp string, id identity.Identifier, resource, next string) paCursor {
	q := r.URL.Query()
	q.Set("next", next)
	path := "/v1/spaces/" + url.PathEscape(sp) + "/collections/users/profiles/" + url.PathEscape(id.String()) + "/" + resource
	return paCursor{URL: path + "?" + q.Encode(), HasMore: true, Next: next}
}

// paPageAfter returns up to limit items from the first one for which from holds, and whether
// more follow.
func paPageAfter[T any](items []T, limit int, from func(T) bool) ([]T, bool) {
	start := slices.IndexFunc(items, from)
	if start < 0 {
		return nil, false
	}
	return paWindow(items, start, limit)
}

func paWindow[T any](items []T, start, limit int) ([]T, bool) {
	start = min(start, len(items))
	end := min(start+limit, len(items))
	return items[start:end], end < len(items)
}

// paLimit reads ?limit, def when absent. Errors: invalid_field (400) naming limit.
func paLimit(q url.Values, def, most int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, errcode.InvalidField("limit", "must be a whole number from 1 to %d, not %q", most, s)
	}
	return n, nil
}

func paBool(q url.Values, name string) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errcode.InvalidField(name, "must be true or false, not %q", s)
	}
	return b, nil
}

// paSet reads a comma-separated list; nil when absent.
func paSet(q url.Values, name string) map[string]bool {
	set := map[string]bool{}
	for _, v := range q[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				set[s] = true
			}
		}
	}
	if len(set) == 0 {
		return nil // absent, or include= with nothing in it: no filter
	}
	return set
}

// paTime reads an RFC 3339 time, def when absent. Errors: invalid_field (400).
func paTime(q url.Values, name string, def time.Time) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errcode.InvalidField(name, "must be an RFC 3339 time such as 2026-11-29T14:00:00Z, not %q", s)
	}
	return t.UTC(), nil
}

func paEarlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func paLater(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
