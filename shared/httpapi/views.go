package httpapi

import (
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/setupcheck"

	"github.com/unifiedprofiles/up/shared/workspace"
)

// The JSON shapes of the admin API (ARCHITECTURE.md section 5). They are written out here,
// apart from the stored records, so the contract cannot drift with a storage change.

type spaceView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func viewSpace(sp workspace.Space) spaceView {
	return spaceView{ID: sp.ID, Name: sp.Name, CreatedAt: sp.CreatedAt}
}

type sourceView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	WriteKey    string    `json:"write_key"`
	AutoCreated bool      `json:"auto_created"`
	Enabled     bool      `json:"enabled"`
	SpaceID     string    `json:"space_id"`
	URL         string    `json:"url,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Connected: the source passed its connection test (its step-2 tile is complete).
	Connected bool `json:"connected"`
}

func viewSource(s workspace.Source) sourceView {
	return sourceView{
		ID: s.ID, Name: s.Name, Type: s.Type, WriteKey: s.WriteKey, AutoCreated: s.AutoCreated,
		Enabled: s.Enabled, SpaceID: s.SpaceID, URL: s.URL, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Connected: s.ConnectedAt != nil,
	}
}

type destinationView struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Category  string         `json:"category"`
	Type      string         `json:"type"`
	Enabled   bool           `json:"enabled"`
	SourceIDs []string       `json:"source_ids"` // [] for every source
	Settings  map[string]any `json:"settings"`
	CreatedAt time.Time      `json:"created_at"`
}

// secretSet stands in the answer for the value of a secret setting: the value is sealed and
// never shown, but the console must be able to say that it was given.
const secretSet = "set"

func viewDestination(d workspace.Destination) destinationView {
	settings := make(map[string]any, len(d.Settings)+len(d.SecretsSet))
	for k, v := range d.Settings {
		settings[k] = v
	}
	for _, k := range d.SecretsSet {
		settings[k] = secretSet
	}
	sourceIDs := d.SourceIDs
	if sourceIDs == nil {
		sourceIDs = []string{}
	}
	return destinationView{ID: d.ID, Name: d.Name, Category: d.Category, Type: d.Type, Enabled: d.Enabled,
		SourceIDs: sourceIDs, Settings: settings, CreatedAt: d.CreatedAt}
}

// accessTokenView never holds the token: it is shown once, by the POST that creates it.
type accessTokenView struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

func viewAccessToken(t workspace.AccessTokenInfo) accessTokenView {
	return accessTokenView{ID: t.ID, CreatedAt: t.CreatedAt}
}

type createdWorkspaceView struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	AccountSID string       `json:"account_sid"`
	CreatedAt  time.Time    `json:"created_at"`
	Token      string       `json:"token"`
	Spaces     []spaceView  `json:"spaces"`
	Sources    []sourceView `json:"sources"`
}

type stepView struct {
	Status string `json:"status"`
}

type setupView struct {
	DataSource *string             `json:"data_source"` // null until chosen
	Locked     bool                `json:"locked"`
	Steps      map[string]stepView `json:"steps"`
}

type workspaceView struct {
	ID         string                     `json:"id"`
	Name       string                     `json:"name"`
	AccountSID string                     `json:"account_sid"`
	CreatedAt  time.Time                  `json:"created_at"`
	Setup      setupView                  `json:"setup"`
	Usage      map[string]workspace.Quota `json:"usage"`
	// Mappings are the workspace's Reverse ETL mappings with their last sync and next run
	// (only where this deployment serves Reverse ETL).
	Mappings []mappingView `json:"mappings,omitempty"`
}

func viewWorkspace(v workspace.View) workspaceView {
	setup := setupView{Locked: v.Workspace.Setup.Locked, Steps: make(map[string]stepView, len(v.Steps))}
	if ds := v.Workspace.Setup.DataSource; ds != "" {
		setup.DataSource = &ds
	}
	for step, status := range v.Steps {
		setup.Steps[step] = stepView{Status: status}
	}
	return workspaceView{
		ID: v.Workspace.ID, Name: v.Workspace.Name, AccountSID: v.Workspace.AccountSID,
		CreatedAt: v.Workspace.CreatedAt, Setup: setup, Usage: v.Usage,
	}
}

type profileSummary struct {
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Identifiers int       `json:"identifiers"`
	Traits      int       `json:"traits"`
}

func summarize(p profile.Profile) profileSummary {
	return profileSummary{ID: p.ID, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Identifiers: len(p.Identifiers), Traits: len(p.TraitValues())}
}

type identifierView struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	FirstSeen time.Time `json:"first_seen"`
	SourceID  string    `json:"source_id,omitempty"`
}

type eventView struct {
	MessageID  string         `json:"message_id"`
	Type       string         `json:"type"`
	Event      string         `json:"event,omitempty"`
	Name       string         `json:"name,omitempty"`
	Timestamp  time.Time      `json:"timestamp"`
	SourceID   string         `json:"source_id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

type profileView struct {
	ID             string               `json:"id"`
	CreatedAt      time.Time            `json:"created_at"`
	UpdatedAt      time.Time            `json:"updated_at"`
	Identifiers    []identifierView     `json:"identifiers"`
	Traits         map[string]any       `json:"traits"`
	ComputedTraits map[string]any       `json:"computed_traits"`
	Events         []eventView          `json:"events"`
	Merges         mergesView           `json:"merges"`
	Violations     []identity.Violation `json:"violations"`
	Groups         []string             `json:"groups"`
}

type mergesView struct {
	Count     int      `json:"count"`
	MergedIDs []string `json:"merged_ids"`
}

func viewProfile(p profile.Profile, events []profile.Event) profileView {
	v := profileView{
		ID: p.ID, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt, Traits: p.TraitValues(), ComputedTraits: map[string]any{},
		Identifiers: make([]identifierView, len(p.Identifiers)), Events: make([]eventView, len(events)),
		Merges:     mergesView{Count: p.Merges, MergedIDs: append([]string{}, p.MergedIDs...)},
		Violations: append([]identity.Violation{}, p.Violations...), Groups: append([]string{}, p.Groups...),
	}
	for i, id := range p.Identifiers {
		v.Identifiers[i] = identifierView{Type: id.Type, Value: id.Value, FirstSeen: id.FirstSeen, SourceID: id.SourceID}
	}
	for i, e := range events {
		v.Events[i] = eventView{MessageID: e.MessageID, Type: e.Type, Event: e.Event, Name: e.Name, Timestamp: e.Timestamp, SourceID: e.SourceID, Properties: e.Properties}
	}
	return v
}

// meView is GET /v1/me.
type meView struct {
	WorkspaceID string `json:"workspace_id"`
	Name        string `json:"name"`
}

// checkView is step 4's answer: reason and hint are always present (empty when there is
// nothing to say), so the console reads one shape.
type checkView struct {
	OK    bool            `json:"ok"`
	Items []checkItemView `json:"items"`
}

type checkItemView struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	Hint   string `json:"hint"`
}

func viewCheck(res setupcheck.Result) checkView {
	out := checkView{OK: res.OK, Items: make([]checkItemView, len(res.Items))}
	for i, it := range res.Items {
		out.Items[i] = checkItemView{Kind: it.Kind, ID: it.ID, Name: it.Name, Status: it.Status, Reason: it.Reason, Hint: it.Hint}
	}
	return out
}
