package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/flex"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/jsoncheck"
	"github.com/unifiedprofiles/up/shared/message"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// The Flex API (ARCHITECTURE.md section 5, PRODUCT.md section 7): the workspace's Twilio auth
// token (admin route, in the admin table), TaskRouter event callbacks signed by Twilio, and the
// agent's profile lookup.

// MaxFlexBodyBytes bounds a webhook body: TaskRouter callbacks are a few KiB of form fields.
const MaxFlexBodyBytes = 64 << 10

// maxInteractions is how many of the latest Flex interactions the agent lookup shows.
const maxInteractions = 10

// maxInteractionScan bounds the events the agent lookup reads to find them.
const maxInteractionScan = 1000

// putFlex stores the workspace's Twilio auth token. The token is in no answer and no log line:
// the answer says only that one is configured, and where Twilio should send its callbacks.
func (a *admin) putFlex(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		AuthToken string `json:"auth_token"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	ws := r.PathValue("ws")
	cfg, err := a.ws.SetFlexAuthToken(r.Context(), p, ws, in.AuthToken)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.flexView(r, ws, cfg))
	return nil
}

// getFlex shows the workspace's Flex settings: whether a token is set, and the webhook URL
// to give Twilio (which the setup page shows before and after the token is set).
func (a *admin) getFlex(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	ws := r.PathValue("ws")
	cfg, err := a.ws.FlexSettings(r.Context(), p, ws)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.flexView(r, ws, cfg))
	return nil
}

func (a *admin) flexView(r *http.Request, ws string, cfg workspace.FlexConfig) map[string]any {
	v := map[string]any{"configured": cfg.Configured, "webhook_url": a.baseURL(r) + "/v1/flex/" + url.PathEscape(ws) + "/webhooks"}
	if cfg.Configured {
		v["updated_at"] = cfg.UpdatedAt
	}
	return v
}

// FlexOptions configure the Flex webhook and agent lookup.
type FlexOptions struct {
	Logger *slog.Logger
	// PublicURL is the base URL Twilio is given for the webhook (see AdminOptions): the
	// signature covers the full URL, so it must be exactly what Twilio calls. When empty it
	// is taken from the request (X-Forwarded-Proto and Host, as API Gateway sends them).
	PublicURL string
	// Now stamps the events received (time.Now when nil).
	Now func() time.Time
}

type flexAPI struct {
	ws       *workspace.Service
	profiles *profile.Service
	tracking *tracking.Service // records callbacks as the tracking API records messages
	log      *slog.Logger
	now      func() time.Time
	// admin lends the admin API's URL reckoning (the webhook URL) and its authentication
	// (the lookup takes the workspace token exactly as the admin routes do).
	admin *admin
	// failures counts failed webhook signatures per workspace (flex_guard.go).
	failures *signatureFailures
}

// MountFlex adds POST /v1/flex/{ws}/webhooks (Twilio-signed) and GET /v1/flex/{ws}/profiles
// (workspace token) to mux.
func MountFlex(mux *http.ServeMux, ws *workspace.Service, profiles *profile.Service, tr *tracking.Service, opts FlexOptions) {
	f := &flexAPI{ws: ws, profiles: profiles, tracking: tr, log: opts.Logger, now: opts.Now}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.admin = &admin{ws: ws, log: f.log, publicURL: strings.TrimRight(opts.PublicURL, "/")}
	f.failures = newSignatureFailures(flexFailureLimit, flexFailureWindow, f.now)
	mux.Handle("POST /v1/flex/{ws}/webhooks", f.handle(f.webhook))
	mux.Handle("/v1/flex/{ws}/webhooks", methodNotAllowed([]string{"POST"}))
	mux.Handle("GET /v1/flex/{ws}/profiles", f.admin.authenticate(f.lookup))
	mux.Handle("/v1/flex/{ws}/profiles", methodNotAllowed([]string{"GET"}))
}

func (f *flexAPI) handle(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, f.log, err)
		}
	})
}

// badSignature is the one answer to every webhook that is not proven to come from Twilio for
// this workspace: no signature, a wrong one, no token configured, no such workspace. Telling
// them apart would let anyone probe which workspaces exist and have Flex set up.
func badSignature() error {
	return errcode.New(errcode.Forbidden, "invalid_signature",
		"the X-Twilio-Signature header is missing or does not match this URL and body for the workspace's Twilio auth token")
}

// webhook records a TaskRouter event callback on the customer's profile, through the
// workspace's Flex source. Nothing is read from the store beyond the token, and nothing is
// written, until the signature is verified.
func (f *flexAPI) webhook(w http.ResponseWriter, r *http.Request) error {
	received := f.now().UTC()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFlexBodyBytes))
	if err != nil {
		if tooLarge(err) {
			return errcode.New(errcode.TooLarge, "body_too_large", "the request body is over the limit of %d bytes", MaxFlexBodyBytes)
		}
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return badSignature() // Twilio sends well-formed forms; this one cannot be verified
	}
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		return badSignature()
	}
	wsID := r.PathValue("ws")
	if err := f.verifySignature(w, r, wsID, form, sig); err != nil {
		return err
	}

	msg, ok, err := flex.EventFromTaskRouter(form, received)
	if err != nil {
		return err
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"recorded": false})
		return nil
	}
	src, err := f.ws.FlexSource(r.Context(), wsID)
	if err != nil {
		return err
	}
	// Through the tracking service, as any source's message: the source's debugger shows it.
	res, err := f.tracking.Ingest(r.Context(), src, tracking.Request{Total: 1, Messages: []tracking.Parsed{{Message: msg}}})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		rj := res.Rejected[0]
		return &errcode.Error{Kind: errcode.Invalid, Code: rj.Code, Message: rj.Message, Field: rj.Field}
	}
	if src.ConnectedAt == nil {
		if _, err := f.ws.MarkConnectedByTraffic(r.Context(), wsID, src.ID); err != nil {
			return err
		}
	}
	out := res.Outcomes[0]
	writeJSON(w, http.StatusOK, map[string]any{"recorded": true, "profile_id": out.ProfileID, "duplicate": out.Duplicate})
	return nil
}

// fullURL is the URL Twilio signed: the public base and the request URI, query included.
func (f *flexAPI) fullURL(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	return f.admin.baseURL(r) + uri
}

// lookupParams are the identifier parameters of the agent lookup, in the order errors name them.
var lookupParams = []string{"phone", "email", "user_id", "anonymous_id"}

// lookup finds (or with create=true makes) the profile of one customer identifier in the
// space of the workspace's Flex source, for the agent's view. admin.authenticate has checked
// the workspace's token before anything is read.
func (f *flexAPI) lookup(w http.ResponseWriter, r *http.Request, _ workspace.Principal) error {
	wsID := r.PathValue("ws")
	param, value, create, err := lookupQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	src, err := f.ws.FlexSource(r.Context(), wsID)
	if err != nil {
		return err
	}
	space := src.SpaceID
	prof, found, err := f.find(r, space, param, value)
	if err != nil {
		return err
	}
	status, created := http.StatusOK, false
	if !found {
		if !create {
			return errcode.NotFoundf("no profile has %s %s in this workspace; add create=true to create one", param, errcode.Clip(value))
		}
		now := f.now().UTC()
		res, err := f.profiles.Apply(r.Context(), space, blankProfileMessage(wsID, src.ID, param, value, now))
		if err != nil {
			return err
		}
		if prof, err = f.profiles.Get(r.Context(), space, res.ProfileID); err != nil {
			return err
		}
		// A duplicate is a concurrent create that lost (same derived messageId): the
		// dedupe record says the profile was created, but by the winner, which alone says so.
		if res.Created && !res.Duplicate {
			status, created = http.StatusCreated, true
		}
	}
	view, err := f.agentView(r, space, prof)
	if err != nil {
		return err
	}
	view.Created = created
	writeJSON(w, status, view)
	return nil
}

// lookupQuery reads exactly one identifier parameter and create from the raw query. A phone's
// '+' sent unencoded (curl "?phone=+1415…") would decode as a space; it is kept as '+'.
// Errors: invalid_field, invalid_phone (400).
func lookupQuery(rawQuery string) (param, value string, create bool, err error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", "", false, &errcode.Error{Kind: errcode.Invalid, Code: "invalid_field", Message: "the query string is malformed: " + err.Error()}
	}
	var given []string
	for _, name := range lookupParams {
		if _, ok := q[name]; ok {
			given = append(given, name)
		}
	}
	if len(given) != 1 {
		return "", "", false, &errcode.Error{Kind: errcode.Invalid, Code: "invalid_field", Field: strings.Join(lookupParams, "|"),
			Message: "send exactly one of the parameters phone, email, user_id or anonymous_id (this request has " + describeGiven(given) + ")"}
	}
	param = given[0]
	if len(q[param]) > 1 {
		return "", "", false, errcode.InvalidField(param, "give it once")
	}
	value = q.Get(param)
	if value == "" {
		return "", "", false, errcode.InvalidField(param, "is empty")
	}
	// The value is looked up as sent: bytes that are not UTF-8 would match the U+FFFD stored
	// for another customer's address.
	if e := jsoncheck.CheckString(param, value); e != nil {
		return "", "", false, e
	}
	switch c := q.Get("create"); c {
	case "", "false":
	case "true":
		create = true
	default:
		return "", "", false, errcode.InvalidField("create", "must be true or false")
	}
	if param == "phone" {
		if raw := rawParam(rawQuery, "phone"); strings.HasPrefix(raw, "+") {
			value = "+" + strings.TrimPrefix(value, " ")
		}
		e164, err := flex.NormalizePhone(value, "")
		if err != nil {
			if e := errcode.As(err); e != nil {
				e.Field = "phone"
			}
			return "", "", false, err
		}
		value = e164
	}
	return param, value, create, nil
}

func describeGiven(given []string) string {
	if len(given) == 0 {
		return "none"
	}
	return strings.Join(given, " and ")
}

// rawParam returns the first raw (still encoded) value of name in rawQuery.
func rawParam(rawQuery, name string) string {
	for pair := range strings.SplitSeq(rawQuery, "&") {
		if k, v, _ := strings.Cut(pair, "="); k == name {
			return v
		}
	}
	return ""
}

// candidates are the identifiers that find a customer's profile, best first. A phone is an
// identifier only in a space with a custom "phone" identifier; everywhere else the profile
// Flex events land on carries the anonymous id "flex:<E.164>" (flex.EventFromTaskRouter).
func candidates(param, value string) []identity.Identifier {
	switch param {
	case "phone":
		return []identity.Identifier{{Type: "phone", Value: value}, {Type: identity.TypeAnonymousID, Value: "flex:" + value}}
	case "email":
		ids := []identity.Identifier{{Type: identity.TypeEmail, Value: value}}
		if lower := strings.ToLower(value); lower != value {
			ids = append(ids, identity.Identifier{Type: identity.TypeEmail, Value: lower}) // Flex events lower-case emails
		}
		return ids
	case "user_id":
		return []identity.Identifier{{Type: identity.TypeUserID, Value: value}}
	}
	return []identity.Identifier{{Type: identity.TypeAnonymousID, Value: value}}
}

func (f *flexAPI) find(r *http.Request, space, param, value string) (profile.Profile, bool, error) {
	for _, id := range candidates(param, value) {
		prof, err := f.profiles.Lookup(r.Context(), space, id)
		if e := errcode.As(err); e != nil && e.Kind == errcode.NotFound {
			continue
		}
		if err != nil {
			return profile.Profile{}, false, err
		}
		return prof, true, nil
	}
	return profile.Profile{}, false, nil
}

// blankProfileMessage is the identify that creates a profile for one identifier, as Studio's
// "Search for a Profile" does. Its messageId depends only on the workspace and the identifier,
// so agents creating the same customer at once create one profile (the rest are duplicates).
func blankProfileMessage(wsID, sourceID, param, value string, now time.Time) message.Message {
	sum := sha256.Sum256([]byte(wsID + "\x00" + param + "\x00" + value))
	m := message.Message{
		Type: message.Identify, MessageID: "flex-lookup-" + hex.EncodeToString(sum[:16]),
		Timestamp: now, ReceivedAt: now, SourceID: sourceID,
	}
	raw := map[string]any{"type": m.Type, "messageId": m.MessageID, "timestamp": now}
	switch param {
	case "phone":
		// The anonymous id the Flex events of this number carry, so they land here too.
		m.AnonymousID, m.Traits = "flex:"+value, map[string]any{"phone": value}
		raw["anonymousId"], raw["traits"] = m.AnonymousID, m.Traits
	case "email":
		m.Traits = map[string]any{"email": value}
		raw["traits"] = m.Traits
	case "user_id":
		m.UserID = value
		raw["userId"] = value
	default:
		m.AnonymousID = value
		raw["anonymousId"] = value
	}
	m.Raw, _ = json.Marshal(raw) // strings and a time: cannot fail
	return m
}

type agentProfileView struct {
	ProfileID      string                `json:"profile_id"`
	Created        bool                  `json:"created"`
	Identifiers    []identity.Identifier `json:"identifiers"`
	Traits         map[string]any        `json:"traits"`
	ComputedTraits map[string]any        `json:"computed_traits"`
	Interactions   []interactionView     `json:"interactions"`
}

type interactionView struct {
	Event      string         `json:"event"`
	Timestamp  time.Time      `json:"timestamp"`
	Properties map[string]any `json:"properties"`
}

// agentView is what the agent sees of a profile: identifiers, traits, computed traits and the
// latest Flex interactions (newest first) of the event window.
func (f *flexAPI) agentView(r *http.Request, space string, prof profile.Profile) (agentProfileView, error) {
	computed, err := f.profiles.ComputedTraitValues(r.Context(), space, prof)
	if err != nil {
		return agentProfileView{}, err
	}
	if computed == nil {
		computed = map[string]any{}
	}
	now := f.now()
	interactions := []interactionView{}
	scanned := 0
	for e, err := range f.profiles.EventsInOrder(r.Context(), space, prof, now.Add(-profile.EventQueryWindow), now.Add(time.Minute), true) {
		if err != nil {
			return agentProfileView{}, err
		}
		// Bounded: an agent waits on this, so a profile with a long tail of other events
		// shows the interactions among its latest maxInteractionScan events.
		if scanned++; len(interactions) == maxInteractions || scanned > maxInteractionScan {
			break
		}
		if e.Type != message.Track || (e.Event != flex.EventEngagementInitiated && e.Event != flex.EventEngagementCompleted) {
			continue
		}
		props := e.Properties
		if props == nil {
			props = map[string]any{}
		}
		interactions = append(interactions, interactionView{Event: e.Event, Timestamp: e.Timestamp, Properties: props})
	}
	ids := make([]identity.Identifier, len(prof.Identifiers))
	for i, id := range prof.Identifiers {
		ids[i] = id.Identifier
	}
	return agentProfileView{ProfileID: prof.ID, Identifiers: ids, Traits: prof.TraitValues(), ComputedTraits: computed, Interactions: interactions}, nil
}
