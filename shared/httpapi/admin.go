package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// AdminOptions configure the admin API.
type AdminOptions struct {
	Logger *slog.Logger
	// PublicURL is the base URL clients reach this API at (used in snippets); when empty it is
	// taken from the request (X-Forwarded-Proto and Host, as API Gateway sends them).
	PublicURL string
	// ConsoleOrigins are the browser origins (scheme://host[:port]) allowed to call the admin
	// API cross-origin (CORS); none by default: the console served by this deployment is
	// same-origin and needs none.
	ConsoleOrigins []string
}

// Services are what the admin API serves.
type Services struct {
	Workspaces *workspace.Service
	Profiles   *profile.Service
	Tracking   *tracking.Service
	Uploads    *upload.Service
	// Warehouse is Reverse ETL; without it its routes answer warehouse_not_configured.
	Warehouse *warehouse.Service
	// Salesforce connects Salesforce sources; without it its routes answer
	// salesforce_not_configured.
	Salesforce *salesforce.Connector
	// SalesforceSyncs runs Salesforce sources' syncs; without it the sync routes answer
	// salesforce_not_configured.
	SalesforceSyncs *salesforce.Runner
	// Deliveries is what destination delivery recorded; without it those routes answer
	// delivery_not_configured.
	Deliveries *delivery.Records
	// Predictions keeps and runs spaces' predictions; without it their routes answer
	// predictions_not_configured.
	Predictions *predict.Service
}

type admin struct {
	ws          *workspace.Service
	profiles    *profile.Service
	tracking    *tracking.Service
	uploads     *upload.Service
	warehouse   *warehouse.Service
	salesforce  *salesforce.Connector
	sfRunner    *salesforce.Runner
	records     *delivery.Records
	predictions *predict.Service
	log         *slog.Logger
	publicURL   string
	cors        cors
}

// authed is a handler that runs for an authenticated principal.
type authed func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error

// MountAdmin adds the admin / setup API (ARCHITECTURE.md section 5) to mux.
func MountAdmin(mux *http.ServeMux, svc Services, opts AdminOptions) {
	a := &admin{ws: svc.Workspaces, profiles: svc.Profiles, tracking: svc.Tracking, uploads: svc.Uploads, warehouse: svc.Warehouse, salesforce: svc.Salesforce, sfRunner: svc.SalesforceSyncs, records: svc.Deliveries, predictions: svc.Predictions, log: opts.Logger, publicURL: strings.TrimRight(opts.PublicURL, "/"), cors: consoleCORS(opts.ConsoleOrigins)}
	if a.log == nil {
		a.log = slog.Default()
	}
	// The OAuth callback has no token (the state is the proof): outside the table.
	mux.Handle("GET "+CallbackPath, http.HandlerFunc(a.salesforceCallback))
	table := a.routes()
	for _, rt := range table {
		var allow []string
		for method, h := range rt.methods {
			mux.Handle(method+" "+rt.pattern, a.cors.handle(a.authenticate(h)))
			allow = append(allow, method)
		}
		slices.Sort(allow)
		mux.Handle("OPTIONS "+rt.pattern, a.cors.preflight(allow))
		if !hasWildcardSibling(rt.pattern, table) {
			mux.Handle(rt.pattern, a.cors.handle(methodNotAllowed(allow)))
			continue
		}
		// A method-less pattern here (…/models/preview) and a sibling's methods (GET
		// …/models/{model}) would be ambiguous to net/http, which panics: the other common
		// methods are refused one by one, and a rarer one falls to the sibling's fallback.
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			if _, ok := rt.methods[method]; !ok {
				mux.Handle(method+" "+rt.pattern, a.cors.handle(methodNotAllowed(allow)))
			}
		}
	}
}

// hasWildcardSibling reports whether pattern ends in a literal segment where another route
// of table has a wildcard ({name}).
func hasWildcardSibling(pattern string, table []route) bool {
	dir, last := path.Split(pattern)
	if strings.HasPrefix(last, "{") {
		return false
	}
	for _, rt := range table {
		if d, l := path.Split(rt.pattern); d == dir && strings.HasPrefix(l, "{") {
			return true
		}
	}
	return false
}

type route struct {
	pattern string
	methods map[string]authed
}

// routes is the admin API's route table; the isolation test walks every entry.
func (a *admin) routes() []route {
	return []route{
		{"/v1/beta/accounts", map[string]authed{"POST": a.acceptBeta}},
		{"/v1/workspaces", map[string]authed{"POST": a.createWorkspace}},
		{"/v1/workspaces/{ws}", map[string]authed{"GET": a.getWorkspace}},
		{"/v1/workspaces/{ws}/setup/data-source", map[string]authed{"PUT": a.chooseDataSource}},
		{"/v1/workspaces/{ws}/setup/identifiers-and-traits", map[string]authed{"GET": a.identifiersAndTraits}},
		{"/v1/workspaces/{ws}/setup/check", map[string]authed{"POST": a.checkSetup}},
		{"/v1/me", map[string]authed{"GET": a.me}},
		{"/v1/workspaces/{ws}/spaces", map[string]authed{"GET": a.listSpaces, "POST": a.createSpace}},
		{"/v1/workspaces/{ws}/spaces/{sp}", map[string]authed{"GET": a.getSpace, "DELETE": a.deleteSpace}},
		{"/v1/workspaces/{ws}/token/rotate", map[string]authed{"POST": a.rotateToken}},
		{"/v1/workspaces/{ws}/spaces/{sp}/access-tokens", map[string]authed{"GET": a.listAccessTokens, "POST": a.createAccessToken}},
		{"/v1/workspaces/{ws}/spaces/{sp}/access-tokens/{id}", map[string]authed{"DELETE": a.revokeAccessToken}},
		{"/v1/workspaces/{ws}/spaces/{sp}/identity", map[string]authed{"GET": a.getIdentity, "PUT": a.putIdentity}},
		{"/v1/workspaces/{ws}/spaces/{sp}/computed-traits", map[string]authed{"GET": a.listComputedTraits, "POST": a.createComputedTrait}},
		{"/v1/workspaces/{ws}/spaces/{sp}/computed-traits/{id}", map[string]authed{"GET": a.getComputedTrait, "DELETE": a.deleteComputedTrait}},
		{"/v1/workspaces/{ws}/spaces/{sp}/predictions", map[string]authed{"GET": a.pred(a.listPredictions), "POST": a.pred(a.createPrediction)}},
		{"/v1/workspaces/{ws}/spaces/{sp}/predictions/{id}", map[string]authed{"GET": a.pred(a.getPrediction), "DELETE": a.pred(a.deletePrediction)}},
		{"/v1/workspaces/{ws}/spaces/{sp}/predictions/{id}/train", map[string]authed{"POST": a.pred(a.trainPrediction)}},
		{"/v1/workspaces/{ws}/spaces/{sp}/profiles", map[string]authed{"GET": a.findProfiles}},
		{"/v1/workspaces/{ws}/spaces/{sp}/profiles/{profile}", map[string]authed{"GET": a.getProfile}},
		{"/v1/workspaces/{ws}/sources", map[string]authed{"GET": a.listSources, "POST": a.createSource}},
		{"/v1/workspaces/{ws}/sources/{src}", map[string]authed{"GET": a.getSource, "PATCH": a.updateSource, "DELETE": a.deleteSource}},
		{"/v1/workspaces/{ws}/sources/{src}/snippet", map[string]authed{"GET": a.snippet}},
		{"/v1/workspaces/{ws}/sources/{src}/test-connection", map[string]authed{"POST": a.testConnection}},
		{"/v1/workspaces/{ws}/sources/{src}/debugger", map[string]authed{"GET": a.debugger}},
		{"/v1/workspaces/{ws}/csv/template", map[string]authed{"GET": a.csvTemplate}},
		{"/v1/workspaces/{ws}/csv/uploads", map[string]authed{"GET": a.listUploads, "POST": a.requestUpload}},
		{"/v1/workspaces/{ws}/csv/uploads/{id}", map[string]authed{"GET": a.getUpload, "DELETE": a.cancelUpload}},
		{"/v1/workspaces/{ws}/destinations", map[string]authed{"GET": a.listDestinations, "POST": a.createDestination}},
		{"/v1/workspaces/{ws}/destinations/{id}", map[string]authed{"GET": a.getDestination, "PATCH": a.updateDestination, "DELETE": a.deleteDestination}},
		{"/v1/workspaces/{ws}/destinations/{id}/deliveries", map[string]authed{"GET": a.deliveries(a.getDeliveries)}},
		{"/v1/workspaces/{ws}/destinations/{id}/debugger", map[string]authed{"GET": a.deliveries(a.destinationDebugger)}},
		{"/v1/workspaces/{ws}/destinations/{id}/dead-letters", map[string]authed{"GET": a.deliveries(a.listDeadLetters)}},
		{"/v1/workspaces/{ws}/destinations/{id}/dead-letters/replay", map[string]authed{"POST": a.deliveries(a.replayDeadLetters)}},
		{"/v1/workspaces/{ws}/flex", map[string]authed{"GET": a.getFlex, "PUT": a.putFlex}},
		{"/v1/workspaces/{ws}/sources/{src}/warehouse", map[string]authed{"GET": a.retl(a.getWarehouse), "PUT": a.retl(a.putWarehouse)}},
		{"/v1/workspaces/{ws}/sources/{src}/warehouse/test", map[string]authed{"POST": a.retl(a.testWarehouse)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/preview", map[string]authed{"POST": a.retl(a.previewModel)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/templates", map[string]authed{"GET": a.retl(a.listModelTemplates)}},
		{"/v1/workspaces/{ws}/sources/{src}/models", map[string]authed{"GET": a.retl(a.listModels), "POST": a.retl(a.createModel)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}", map[string]authed{"GET": a.retl(a.getModel), "PATCH": a.retl(a.updateModel), "DELETE": a.retl(a.deleteModel)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}/mappings", map[string]authed{"GET": a.retl(a.listMappings), "POST": a.retl(a.createMapping)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}", map[string]authed{"GET": a.retl(a.getMapping), "PATCH": a.retl(a.updateMapping), "DELETE": a.retl(a.deleteMapping)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}/syncs", map[string]authed{"GET": a.retl(a.listSyncs), "POST": a.retl(a.syncNow)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}/syncs/{sync}", map[string]authed{"GET": a.retl(a.getSync)}},
		{"/v1/workspaces/{ws}/sources/{src}/models/{model}/mappings/{mapping}/reset", map[string]authed{"POST": a.retl(a.resetMapping)}},
		{"/v1/workspaces/{ws}/sources/{src}/salesforce", map[string]authed{"GET": a.sf(a.getSalesforce), "PUT": a.sf(a.putSalesforce)}},
		{"/v1/workspaces/{ws}/sources/{src}/salesforce/syncs", map[string]authed{"GET": a.sfSyncs(a.listSalesforceSyncs), "POST": a.sfSyncs(a.salesforceSyncNow)}},
	}
}

// authenticate resolves the bearer token before the handler runs, and answers the handler's
// error with the envelope.
func (a *admin) authenticate(h authed) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		p, err := a.ws.Authenticate(r.Context(), strings.TrimSpace(bearer))
		// Tenant check before the body is even read: another tenant learns nothing, not
		// even whether its request would have been valid. The domain checks again.
		if ws := r.PathValue("ws"); err == nil && ws != "" {
			err = p.Owns(ws)
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			writeError(w, r, a.log, err)
		}
	})
}

func methodNotAllowed(allow []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{
			Code: "method_not_allowed", Message: r.Method + " is not allowed here; use " + strings.Join(allow, " or "),
		}})
	})
}

func (a *admin) acceptBeta(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	if err := p.IsOperator(); err != nil {
		return err
	}
	var in struct {
		AccountSID string `json:"account_sid"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	acc, err := a.ws.AcceptBeta(r.Context(), p, in.AccountSID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if acc.New {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{
		"account_sid": acc.Account.AccountSID, "invite_token": acc.InviteToken, "accepted_at": acc.Account.AcceptedAt,
	})
	return nil
}

func (a *admin) createWorkspace(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name       string `json:"name"`
		AccountSID string `json:"account_sid"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := a.ws.CreateWorkspace(r.Context(), p, in.Name, in.AccountSID)
	if err != nil {
		return err
	}
	spaces := make([]spaceView, len(c.Spaces))
	for i, sp := range c.Spaces {
		spaces[i] = viewSpace(sp)
	}
	sources := make([]sourceView, len(c.Sources))
	for i, src := range c.Sources {
		sources[i] = viewSource(src)
	}
	writeJSON(w, http.StatusCreated, createdWorkspaceView{
		ID: c.Workspace.ID, Name: c.Workspace.Name, AccountSID: c.Workspace.AccountSID,
		CreatedAt: c.Workspace.CreatedAt, Token: c.Token, Spaces: spaces, Sources: sources,
	})
	return nil
}

func (a *admin) getWorkspace(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	v, err := a.ws.GetWorkspace(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := viewWorkspace(v)
	if a.warehouse != nil { // GetWorkspace checked that p owns the workspace
		maps, err := a.warehouse.WorkspaceMappings(r.Context(), v.Workspace.ID)
		if err != nil {
			return err
		}
		for _, m := range maps {
			out.Mappings = append(out.Mappings, viewMapping(m))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *admin) chooseDataSource(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Kind string `json:"kind"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	v, err := a.ws.ChooseDataSource(r.Context(), p, r.PathValue("ws"), in.Kind)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewWorkspace(v))
	return nil
}

func (a *admin) listSpaces(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	spaces, err := a.ws.ListSpaces(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := make([]spaceView, len(spaces))
	for i, sp := range spaces {
		out[i] = viewSpace(sp)
	}
	writeJSON(w, http.StatusOK, map[string]any{"spaces": out})
	return nil
}

func (a *admin) getSpace(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSpace(sp))
	return nil
}

// deleteSpace deletes a space no source feeds (and its access tokens), freeing its slot.
func (a *admin) deleteSpace(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	// A space's predictions hold workspace slots and are reached through the space: deleted
	// with it, they could be neither seen nor deleted, and their slots would be lost. So they
	// go first, as the sources feeding it do (checked by DeleteSpace).
	if a.predictions != nil {
		preds, err := a.predictions.List(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
		if err != nil {
			return err
		}
		if len(preds) > 0 {
			keys := make([]string, len(preds))
			for i, pr := range preds {
				keys[i] = pr.Key
			}
			return errcode.New(errcode.Conflict, "space_in_use", "space %s has %d prediction(s) (%s); delete them first",
				r.PathValue("sp"), len(preds), errcode.Clip(strings.Join(keys, ", ")))
		}
	}
	if err := a.ws.DeleteSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *admin) createSpace(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	sp, err := a.ws.CreateSpace(r.Context(), p, r.PathValue("ws"), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewSpace(sp))
	return nil
}

func (a *admin) createAccessToken(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	tok, err := a.ws.CreateAccessToken(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok.Token, "id": tok.ID, "space_id": tok.SpaceID, "created_at": tok.CreatedAt})
	return nil
}

// listAccessTokens shows ids and creation times only: a token is shown once, when created.
func (a *admin) listAccessTokens(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	toks, err := a.ws.ListAccessTokens(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	out := make([]accessTokenView, len(toks))
	for i, t := range toks {
		out[i] = viewAccessToken(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_tokens": out})
	return nil
}

func (a *admin) revokeAccessToken(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	if err := a.ws.RevokeAccessToken(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateToken replaces the workspace token the request carries; the answer is the only place
// the new one is shown. It takes no body.
func (a *admin) rotateToken(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	tok, err := a.ws.RotateWorkspaceToken(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok})
	return nil
}

func (a *admin) listSources(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sources, err := a.ws.ListSources(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := make([]sourceView, len(sources))
	for i, src := range sources {
		out[i] = viewSource(src)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": out})
	return nil
}

func (a *admin) createSource(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		SpaceID string `json:"space_id"`
		URL     string `json:"url"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	src, err := a.ws.CreateSource(r.Context(), p, r.PathValue("ws"), workspace.NewSource{Name: in.Name, Type: in.Type, SpaceID: in.SpaceID, URL: in.URL})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewSource(src))
	return nil
}

func (a *admin) getSource(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	src, err := a.ws.GetSource(r.Context(), p, r.PathValue("ws"), r.PathValue("src"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSource(src))
	return nil
}

func (a *admin) updateSource(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name    *string `json:"name"`
		Enabled *bool   `json:"enabled"`
		URL     *string `json:"url"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	src, err := a.ws.UpdateSource(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), workspace.SourceChange{Name: in.Name, Enabled: in.Enabled, URL: in.URL})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSource(src))
	return nil
}

func (a *admin) deleteSource(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	if err := a.ws.DeleteSource(r.Context(), p, r.PathValue("ws"), r.PathValue("src")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *admin) snippet(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sn, err := a.ws.SourceSnippet(r.Context(), p, r.PathValue("ws"), r.PathValue("src"), a.baseURL(r))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"source_id": sn.SourceID, "type": sn.Type, "language": sn.Language, "snippet": sn.Code})
	return nil
}

// baseURL is where clients reach this API.
func (a *admin) baseURL(r *http.Request) string { return baseURL(a.publicURL, r) }

// baseURL is where clients reach this API: publicURL when set, else the request's own
// scheme (X-Forwarded-Proto, as API Gateway sends it) and Host.
func baseURL(publicURL string, r *http.Request) string {
	if publicURL != "" {
		return publicURL
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (a *admin) listDestinations(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	ds, err := a.ws.ListDestinations(r.Context(), p, r.PathValue("ws"))
	if err != nil {
		return err
	}
	out := make([]destinationView, len(ds))
	for i, d := range ds {
		out[i] = viewDestination(d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"destinations": out})
	return nil
}

func (a *admin) createDestination(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name      string         `json:"name"`
		Category  string         `json:"category"`
		Type      string         `json:"type"`
		Settings  map[string]any `json:"settings"`
		SourceIDs []string       `json:"source_ids"`
		Enabled   *bool          `json:"enabled"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d, err := a.ws.CreateDestination(r.Context(), p, r.PathValue("ws"), workspace.NewDestination{
		Name: in.Name, Category: in.Category, Type: in.Type, Settings: in.Settings, SourceIDs: in.SourceIDs, Enabled: in.Enabled})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewDestination(d))
	return nil
}

func (a *admin) updateDestination(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	var in struct {
		Name      *string   `json:"name"`
		Enabled   *bool     `json:"enabled"`
		SourceIDs *[]string `json:"source_ids"`
		// Fixed at creation; read so that the refusal says so rather than "unknown field".
		Category json.RawMessage `json:"category"`
		Type     json.RawMessage `json:"type"`
		Settings json.RawMessage `json:"settings"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	for _, fixed := range []struct {
		field string
		given json.RawMessage
	}{{"category", in.Category}, {"type", in.Type}, {"settings", in.Settings}} {
		if fixed.given != nil {
			return errcode.InvalidField(fixed.field, "cannot be changed: delete the destination and create it again (only name, enabled and source_ids change)")
		}
	}
	d, err := a.ws.UpdateDestination(r.Context(), p, r.PathValue("ws"), r.PathValue("id"),
		workspace.DestinationChange{Name: in.Name, Enabled: in.Enabled, SourceIDs: in.SourceIDs})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewDestination(d))
	return nil
}

func (a *admin) getDestination(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	d, err := a.ws.GetDestination(r.Context(), p, r.PathValue("ws"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewDestination(d))
	return nil
}

func (a *admin) deleteDestination(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	if err := a.ws.DeleteDestination(r.Context(), p, r.PathValue("ws"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *admin) getIdentity(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	set, err := a.profiles.Settings(r.Context(), sp.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, set)
	return nil
}

func (a *admin) putIdentity(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	var in identity.Settings
	if err := decode(w, r, &in); err != nil {
		return err
	}
	set, err := a.profiles.SaveSettings(r.Context(), sp.ID, in)
	if err != nil {
		return err
	}
	if err := a.ws.MarkSaved(r.Context(), p, sp.WorkspaceID, workspace.SavedIdentifiers); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, set)
	return nil
}

// explorerEvents is how many of the latest events the profile explorer shows.
const explorerEvents = 20

// findProfiles is the explorer's search: the profile owning ?identifier=type:value, if any.
func (a *admin) findProfiles(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	id, err := profile.ParseIdentifier("identifier", r.URL.Query().Get("identifier"))
	if err != nil {
		return err
	}
	found := []profileSummary{}
	prof, err := a.profiles.Lookup(r.Context(), sp.ID, id)
	switch {
	case err == nil:
		found = append(found, summarize(prof))
	case !errcode.Is(err, "not_found"):
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"profiles": found})
	return nil
}

// getProfile is the explorer's view of one profile; a merged-away id shows its survivor.
func (a *admin) getProfile(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
	sp, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	prof, err := a.profiles.Get(r.Context(), sp.ID, r.PathValue("profile"))
	if err != nil {
		return err
	}
	end := time.Now()
	var events []profile.Event
	for e, err := range a.profiles.EventsInOrder(r.Context(), sp.ID, prof, end.Add(-profile.EventQueryWindow), end.Add(time.Minute), true) {
		if err != nil {
			return err
		}
		if events = append(events, e); len(events) == explorerEvents {
			break
		}
	}
	v := viewProfile(prof, events)
	if v.ComputedTraits, err = a.profiles.ComputedTraitValues(r.Context(), sp.ID, prof); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
