package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Salesforce sources (ARCHITECTURE.md section 5 "Salesforce"): connect with the OAuth 2.0
// web-server flow (PKCE and state), the callback Salesforce redirects the browser to, and the
// connection's status. The domain (shared/salesforce) checks ownership and types.

// CallbackPath is where Salesforce sends the browser back: register {public URL}+CallbackPath
// as the connected app's callback URL.
const CallbackPath = "/v1/salesforce/callback"

// sfHandler is a Salesforce handler: an authed handler that also gets the connector.
type sfHandler func(w http.ResponseWriter, r *http.Request, p workspace.Principal, sf *salesforce.Connector) error

// sf adapts h to the route table; without the connector every such route answers
// salesforce_not_configured.
func (a *admin) sf(h sfHandler) authed {
	return func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
		if a.salesforce == nil {
			return sfNotConfigured()
		}
		return h(w, r, p, a.salesforce)
	}
}

func sfNotConfigured() error {
	return errcode.New(errcode.Invalid, "salesforce_not_configured", "this deployment does not serve Salesforce sources")
}

// salesforceView is a source's Salesforce connection as the API shows it: never a token.
type salesforceView struct {
	Connected         bool                 `json:"connected"`
	Status            string               `json:"status"`
	Reason            string               `json:"reason,omitempty"`
	Hint              string               `json:"hint,omitempty"`
	InstanceURL       string               `json:"instance_url"`
	Username          string               `json:"username"`
	Environment       string               `json:"environment"`
	Objects           []string             `json:"objects"`
	WarehouseSourceID string               `json:"warehouse_source_id"`
	ConnectedAt       *time.Time           `json:"connected_at"`
	NextSyncAt        *time.Time           `json:"next_sync_at"`
	LastSync          *salesforce.LastSync `json:"last_sync"`
}

func viewSalesforce(c salesforce.Connection) salesforceView {
	v := salesforceView{Connected: c.Connected, Status: c.Status(), InstanceURL: c.InstanceURL, Username: c.Username,
		Environment: c.Environment, Objects: c.Objects, WarehouseSourceID: c.WarehouseSourceID, ConnectedAt: c.ConnectedAt,
		NextSyncAt: c.NextSyncAt, LastSync: c.LastSync}
	if v.Objects == nil {
		v.Objects = []string{}
	}
	if c.Reauthorize {
		v.Reason, v.Hint = c.ReauthorizeReason, salesforce.ReauthorizeHint
	}
	return v
}

// putSalesforce starts connecting: it answers the authorize URL to send the browser to.
func (a *admin) putSalesforce(w http.ResponseWriter, r *http.Request, p workspace.Principal, sf *salesforce.Connector) error {
	var in struct {
		Environment       string   `json:"environment"`
		Objects           []string `json:"objects"`
		WarehouseSourceID string   `json:"warehouse_source_id"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u, err := sf.Connect(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), salesforce.ConnectRequest{
		Environment: in.Environment, Objects: in.Objects, WarehouseSourceID: in.WarehouseSourceID,
		RedirectURI: a.baseURL(r) + CallbackPath})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"authorize_url": u})
	return nil
}

func (a *admin) getSalesforce(w http.ResponseWriter, r *http.Request, p workspace.Principal, sf *salesforce.Connector) error {
	c, err := sf.Get(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSalesforce(c))
	return nil
}

// salesforceCallback is GET /v1/salesforce/callback?code=&state= (or ?error=&error_description=),
// outside the route table: it has no token, the state is the proof. A browser (Accept
// text/html) is sent back to the console; other clients get JSON.
func (a *admin) salesforceCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	html := strings.Contains(r.Header.Get("Accept"), "text/html")
	fail := func(err error) {
		if e := errcode.As(err); html && e != nil {
			a.toConsole(w, r, url.Values{"salesforce": {"error"}, "reason": {e.Code}, "message": {errcode.Cut(e.Message, 300)}})
			return
		}
		writeError(w, r, a.log, err)
	}
	if a.salesforce == nil {
		fail(sfNotConfigured())
		return
	}
	if oauthErr := q.Get("error"); oauthErr != "" {
		// The user declined, or Salesforce refused the request: nothing is stored.
		fail(errcode.New(errcode.Invalid, "salesforce_"+snake(oauthErr), "Salesforce did not authorize the connection (%s: %s): connect again",
			errcode.Clip(oauthErr), errcode.Cut(q.Get("error_description"), 200)))
		return
	}
	c, err := a.salesforce.Callback(r.Context(), q.Get("state"), q.Get("code"))
	if err != nil {
		fail(err)
		return
	}
	if html {
		a.toConsole(w, r, url.Values{"salesforce": {"connected"}, "source_id": {c.SourceID}})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		salesforceView
		WorkspaceID string `json:"workspace_id"`
		SourceID    string `json:"source_id"`
	}{viewSalesforce(c), c.WorkspaceID, c.SourceID})
}

// toConsole redirects to the console's warehouse setup step with q.
func (a *admin) toConsole(w http.ResponseWriter, r *http.Request, q url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, a.baseURL(r)+"/#/setup/warehouse?"+q.Encode(), http.StatusFound)
}

// snake keeps an OAuth error code to [a-z0-9_] (it becomes part of ours).
func snake(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(errcode.Cut(s, 40)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "error"
	}
	return b.String()
}
