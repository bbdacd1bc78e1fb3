// Package workspace is the domain of a Unified Profiles workspace: beta acceptance, the
// workspace with its Unify spaces, sources and destinations, the entitlements that bound
// them, and the guided-setup state. Every method says who may call it and which error codes
// it returns; errors are *errcode.Error.
package workspace

import (
	"slices"
	"time"
)

// Entitlements of a Unified Profiles workspace (PRODUCT.md section 1).
const (
	MaxExtraSources   = 4 // beyond the two auto-created ones
	MaxDestinations   = 3
	MaxSpaces         = 2
	MaxComputedTraits = 2
	MaxPredictions    = 2
	MaxNameLength     = 100
)

// Resources counted against an entitlement, as named in usage and errors.
const (
	ResourceSources        = "sources"
	ResourceDestinations   = "destinations"
	ResourceSpaces         = "spaces"
	ResourceComputedTraits = "computed_traits"
	ResourcePredictions    = "predictions"
)

// Resources lists the entitlements in the order usage shows them.
var Resources = []string{ResourceSources, ResourceDestinations, ResourceSpaces, ResourceComputedTraits, ResourcePredictions}

// Limit returns the entitlement of a resource.
func Limit(resource string) int {
	switch resource {
	case ResourceSources:
		return MaxExtraSources
	case ResourceDestinations:
		return MaxDestinations
	case ResourceSpaces:
		return MaxSpaces
	case ResourceComputedTraits:
		return MaxComputedTraits
	case ResourcePredictions:
		return MaxPredictions
	}
	return 0
}

// Source types a user may create (PRODUCT.md section 1), and the two auto-created ones.
var SourceTypes = []string{
	"salesforce", "bigquery", "postgres", "redshift", "snowflake",
	"swift", "kotlin", "javascript", "twilio_event_streams", "http", "java",
}

const (
	FlexSourceName     = "flex-unify-server-source"
	FlexSourceType     = "java"
	PersonasSourceType = "personas"
	FirstSpaceName     = "Unify space"
)

// DestinationCategories a workspace may use.
var DestinationCategories = []string{"storage", "analytics", "event_streams", "segment_profiles", "segment_connections"}

// Data sources of guided-setup step 1.
const (
	DataSourceCSV                 = "csv"
	DataSourceSalesforceWarehouse = "salesforce_warehouse"
	DataSourceWarehouse           = "warehouse"
	DataSourceWebsite             = "website"
	DataSourceMobile              = "mobile"
)

// DataSources lists the step-1 choices.
var DataSources = []string{DataSourceCSV, DataSourceSalesforceWarehouse, DataSourceWarehouse, DataSourceWebsite, DataSourceMobile}

// connectionTypes: the source types that connect each data-source choice in step 2.
var connectionTypes = map[string][]string{
	DataSourceSalesforceWarehouse: {"salesforce", "bigquery", "postgres", "redshift", "snowflake"},
	DataSourceWarehouse:           {"bigquery", "postgres", "redshift", "snowflake"},
	DataSourceWebsite:             {"javascript"},
	DataSourceMobile:              {"swift", "kotlin"},
}

// BetaAccount is a Flex account accepted into the beta: the prerequisite for a workspace.
type BetaAccount struct {
	AccountSID  string    `json:"account_sid"`
	AcceptedAt  time.Time `json:"accepted_at"`
	InviteHash  string    `json:"invite_hash,omitempty"` // the outstanding invite token's hash
	WorkspaceID string    `json:"workspace_id,omitempty"`
}

// Workspace is one tenant.
type Workspace struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	AccountSID   string    `json:"account_sid"`
	CreatedAt    time.Time `json:"created_at"`
	FirstSpaceID string    `json:"first_space_id"`
	Setup        Setup     `json:"setup"`
}

// Setup is the guided-setup state kept per workspace.
type Setup struct {
	DataSource string `json:"data_source,omitempty"`
	// Locked is set when the user takes an action in step 2 (creates a source) under a
	// choice other than csv; from then on the choice cannot change.
	Locked bool `json:"locked,omitempty"`
	// Completed records when later steps were completed (filled in by their features).
	Completed map[string]time.Time `json:"completed,omitempty"`
	// Saved records when each part of step 3 (SavedIdentifiers, SavedTraits) was first
	// saved; see MarkSaved.
	Saved map[string]time.Time `json:"saved,omitempty"`
}

// Guided-setup steps and their statuses.
const (
	StepSelectDataSource     = "select_data_source"
	StepAddConnections       = "add_connections"
	StepIdentifiersAndTraits = "identifiers_and_traits"
	StepCheckConfiguration   = "check_configuration"

	StatusNotStarted = "not_started"
	StatusInProgress = "in_progress"
	StatusComplete   = "complete"
)

// Steps lists the four steps in order.
var Steps = []string{StepSelectDataSource, StepAddConnections, StepIdentifiersAndTraits, StepCheckConfiguration}

// StepStatuses derives each step's status from the setup state and the workspace's sources.
func (s Setup) StepStatuses(sources []Source) map[string]string {
	out := make(map[string]string, len(Steps))
	for _, step := range Steps {
		out[step] = StatusNotStarted
		if _, done := s.Completed[step]; done {
			out[step] = StatusComplete
		}
	}
	if s.DataSource != "" {
		out[StepSelectDataSource] = StatusComplete
	}
	if out[StepIdentifiersAndTraits] != StatusComplete {
		out[StepIdentifiersAndTraits] = s.identifiersAndTraitsStatus() // setup_step3.go
	}
	if out[StepAddConnections] != StatusComplete {
		for _, src := range sources {
			if slices.Contains(connectionTypes[s.DataSource], src.Type) {
				out[StepAddConnections] = StatusInProgress
			}
		}
	}
	return out
}

// Space is a Unify space: one identity graph and its profiles.
type Space struct {
	ID          string    `json:"id"`
	WorkspaceID string    `json:"workspace_id"`
	Name        string    `json:"name"`
	CreatedAt   time.Time `json:"created_at"`
}

// Source sends data into a space.
type Source struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	SpaceID     string `json:"space_id"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	URL         string `json:"url,omitempty"`
	// WriteKey authenticates the tracking API. Like Segment's, it is published in page and app
	// code, so it is an identifier rather than a secret; lookups go through its hash anyway.
	WriteKey    string    `json:"write_key"`
	AutoCreated bool      `json:"auto_created"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// ConnectedAt is when the source first passed its connection test (its step-2 tile).
	ConnectedAt *time.Time `json:"connected_at,omitempty"`
}

// Destination receives the messages of the workspace's sources (package delivery sends them).
type Destination struct {
	ID          string `json:"id"`
	WorkspaceID string `json:"workspace_id"`
	Name        string `json:"name"`
	Category    string `json:"category"`
	// Type is how it is reached, the one its category takes (DestinationType).
	Type string `json:"type"`
	// Settings are the settings that are not secrets (IsSecretSetting).
	Settings map[string]any `json:"settings,omitempty"`
	// SecretsSet names the secret settings that are set, sorted; their values are sealed
	// and only DestinationSettings opens them.
	SecretsSet []string `json:"secret_settings,omitempty"`
	// SourceIDs are the sources it takes messages from; empty means every source of the
	// workspace, those created later included.
	SourceIDs []string `json:"source_ids,omitempty"`
	// Enabled is false while the user has paused it: nothing is delivered to it.
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"created_at"`
}

// Quota is one entitlement's usage.
type Quota struct {
	Used  int `json:"used"`
	Limit int `json:"limit"`
}

// Usage maps each resource of Resources to its quota.
type Usage map[string]Quota

// View is a workspace as its owner sees it.
type View struct {
	Workspace Workspace
	Steps     map[string]string
	Usage     Usage
	Sources   []Source // the steps are derived from them
}
