package workspace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// Destination types: how a destination is reached. Each category takes one
// (DestinationType); the values are package delivery's Type constants.
const (
	DestinationTypeS3                 = "s3"
	DestinationTypeWebhook            = "webhook"
	DestinationTypeSegmentProfiles    = "segment_profiles"
	DestinationTypeSegmentConnections = "segment_connections"
)

var destinationTypes = map[string]string{
	"storage":             DestinationTypeS3,
	"analytics":           DestinationTypeWebhook,
	"event_streams":       DestinationTypeWebhook,
	"segment_profiles":    DestinationTypeSegmentProfiles,
	"segment_connections": DestinationTypeSegmentConnections,
}

// DestinationType returns the type of the destinations of category, "" for an unknown one.
func DestinationType(category string) string { return destinationTypes[category] }

// MaxDestinationSources bounds a destination's SourceIDs.
const MaxDestinationSources = 50

// NewDestination is what a user asks for when adding a destination.
type NewDestination struct {
	Name     string
	Category string
	// Type may be left "" for the category's (DestinationType); no other is accepted.
	Type     string
	Settings map[string]any
	// SourceIDs are the sources it takes messages from; empty means every source.
	SourceIDs []string
	// Enabled is nil for true: a destination delivers from its creation unless asked not to.
	Enabled *bool
}

// destinationRecord is the stored item: the destination with its secret settings sealed
// together (opaque ciphertext, base64 in JSON). The secrets never sit in Settings.
type destinationRecord struct {
	Destination
	// StoredEnabled takes the place of Destination.Enabled in the item, so that an item
	// written before destinations could be paused (no "enabled") reads as enabled.
	StoredEnabled *bool  `json:"enabled,omitempty"`
	SealedSecrets []byte `json:"sealed_secrets,omitempty"`
}

// item is the record as stored.
func (rec destinationRecord) item() store.Item {
	enabled := rec.Enabled
	rec.StoredEnabled = &enabled
	return item(destinationKey(rec.WorkspaceID, rec.ID), rec)
}

// loaded fills in what an item written before types and pausing lacks.
func (rec destinationRecord) loaded() destinationRecord {
	if rec.Type == "" {
		rec.Type = DestinationType(rec.Category)
	}
	rec.Enabled = rec.StoredEnabled == nil || *rec.StoredEnabled
	return rec
}

func (s *Service) loadDestination(ctx context.Context, wsID, id string) (destinationRecord, int64, error) {
	if len(id) > maxPathID {
		return destinationRecord{}, 0, destinationNotFound(wsID, id)
	}
	rec, version, err := store.LoadJSON[destinationRecord](ctx, s.st, destinationKey(wsID, id), destinationNotFound(wsID, id))
	return rec.loaded(), version, err
}

// destinationsOf returns every destination of the workspace as it may be shown.
func (s *Service) destinationsOf(ctx context.Context, wsID string) ([]Destination, error) {
	recs, err := list[destinationRecord](ctx, s.st, wsID, destinationPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Destination, len(recs))
	for i, rec := range recs {
		out[i] = rec.loaded().shown()
	}
	return out, nil
}

// maxSealedSettings bounds the secret settings of one destination, as JSON: KMS encrypts at
// most 4 KiB directly, and one Encrypt per destination keeps a create to one KMS call.
const maxSealedSettings = 4096

// secretFragments mark a setting as a secret when its name, lower-cased without '_' and '-',
// contains one: password, secret_access_key, the webhook's secret and headers (they often
// carry an Authorization), api_key, auth_token, … A name is judged rather than listed one by
// one, so a new destination type's secret is sealed without anyone remembering to add it here.
var secretFragments = []string{"password", "passwd", "passphrase", "secret", "token", "privatekey", "credential", "apikey", "authorization", "signingkey", "header"}

// IsSecretSetting reports whether the destination setting named key holds a secret: it is
// stored sealed and never returned.
func IsSecretSetting(key string) bool {
	norm := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(key))
	for _, f := range secretFragments {
		if strings.Contains(norm, f) {
			return true
		}
	}
	return false
}

// destinationAAD binds sealed settings to their workspace, as the Flex token is bound: the
// role policies allow no other encryption-context key.
func destinationAAD(ws string) map[string]string { return map[string]string{"workspace_id": ws} }

// CreateDestination stores a destination's configuration, within the entitlement of
// MaxDestinations. Its settings are checked for its type (s3, webhook, segment_profiles,
// segment_connections), and the spaces and sources they name must be the workspace's.
// Secret settings (IsSecretSetting) are sealed with the Service's Sealer and kept apart; the
// answer names them in SecretsSet and never holds their values.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field,
// entitlement_exceeded (403), secrets_not_configured (500) for secret settings on a
// deployment without a Sealer.
func (s *Service) CreateDestination(ctx context.Context, p Principal, wsID string, in NewDestination) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	if err := validName("name", in.Name); err != nil {
		return Destination{}, err
	}
	if err := oneOf("category", in.Category, DestinationCategories); err != nil {
		return Destination{}, err
	}
	typ := DestinationType(in.Category)
	if in.Type != "" && in.Type != typ {
		return Destination{}, errcode.InvalidField("type", "%q is not a type of %s destinations; use %q (or leave it out)", errcode.Clip(in.Type), in.Category, typ)
	}
	settings, err := validSettings(typ, in.Settings)
	if err != nil {
		return Destination{}, err
	}
	sourceIDs := slices.Clone(in.SourceIDs)
	if len(sourceIDs) == 0 {
		sourceIDs = nil
	}
	if err := validSourceIDs(typ, settings, sourceIDs); err != nil {
		return Destination{}, err
	}
	if err := s.checkDestinationRefs(ctx, wsID, typ, settings, sourceIDs); err != nil {
		return Destination{}, err
	}
	public, secret := splitSettings(settings)
	d := Destination{ID: s.ids.New(destinationIDPrefix), WorkspaceID: wsID, Name: in.Name, Category: in.Category, Type: typ,
		Settings: public, SourceIDs: sourceIDs, Enabled: in.Enabled == nil || *in.Enabled, CreatedAt: s.now()}
	rec := destinationRecord{Destination: d}
	if len(secret) > 0 {
		plain, err := json.Marshal(secret) // strings, and the headers' object of strings: cannot fail
		if err != nil {
			return Destination{}, fmt.Errorf("encode the secret settings: %w", err)
		}
		if len(plain) > maxSealedSettings {
			return Destination{}, errcode.InvalidField("settings", "the secret settings (%s) take %d bytes together; the limit is %d",
				strings.Join(slices.Sorted(maps.Keys(secret)), ", "), len(plain), maxSealedSettings)
		}
		if s.secrets == nil {
			return Destination{}, noSecrets("the destination's secret settings")
		}
		if rec.SealedSecrets, err = s.secrets.Seal(ctx, plain, destinationAAD(wsID)); err != nil {
			return Destination{}, fmt.Errorf("seal the settings of a destination of %s: %w", wsID, err)
		}
		rec.SecretsSet = slices.Sorted(maps.Keys(secret))
	}
	if err := s.createCounted(ctx, wsID, ResourceDestinations, " destinations", rec.item()); err != nil {
		return Destination{}, err
	}
	return rec.shown(), nil
}

// validSourceIDs checks a destination's source list without looking the sources up.
func validSourceIDs(typ string, settings map[string]any, ids []string) error {
	if len(ids) > MaxDestinationSources {
		return errcode.InvalidField("source_ids", "lists %d sources; the limit is %d (leave it empty for every source)", len(ids), MaxDestinationSources)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		switch {
		case id == "":
			return errcode.InvalidField("source_ids", "holds an empty source id")
		case seen[id]:
			return errcode.InvalidField("source_ids", "lists %s twice", errcode.Clip(id))
		}
		seen[id] = true
	}
	if typ != DestinationTypeSegmentConnections {
		return nil
	}
	// Forwarding a source into itself would loop: its sources must be listed, without it.
	target, _ := settings["source_id"].(string)
	if len(ids) == 0 {
		return errcode.InvalidField("source_ids", "must list the sources to forward from (a segment_connections destination does not take every source); it cannot include settings.source_id")
	}
	if seen[target] {
		return errcode.InvalidField("source_ids", "includes %s, the source it forwards into (settings.source_id): that would loop", errcode.Clip(target))
	}
	return nil
}

// checkDestinationRefs checks that the sources and the space a destination names are the
// workspace's.
func (s *Service) checkDestinationRefs(ctx context.Context, wsID, typ string, settings map[string]any, sourceIDs []string) error {
	if typ == DestinationTypeSegmentProfiles {
		spaceID, _ := settings["space_id"].(string)
		if ok, err := s.exists(ctx, spaceKey(wsID, spaceID), spaceID); err != nil {
			return err
		} else if !ok {
			return errcode.InvalidField("settings.space_id", "space %s is not a space of this workspace", errcode.Clip(spaceID))
		}
	}
	if typ == DestinationTypeSegmentConnections {
		srcID, _ := settings["source_id"].(string)
		if ok, err := s.exists(ctx, sourceKey(wsID, srcID), srcID); err != nil {
			return err
		} else if !ok {
			return errcode.InvalidField("settings.source_id", "source %s is not a source of this workspace", errcode.Clip(srcID))
		}
	}
	return s.checkSourcesExist(ctx, wsID, sourceIDs)
}

// checkSourcesExist checks that every id is a source of the workspace, in one query.
func (s *Service) checkSourcesExist(ctx context.Context, wsID string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	srcs, err := list[Source](ctx, s.st, wsID, sourcePrefix)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !slices.ContainsFunc(srcs, func(src Source) bool { return src.ID == id }) {
			return errcode.InvalidField("source_ids", "%s is not a source of this workspace", errcode.Clip(id))
		}
	}
	return nil
}

// exists reports whether the item at k is stored; an id too long to be one is not.
func (s *Service) exists(ctx context.Context, k store.Key, id string) (bool, error) {
	if id == "" || len(id) > maxPathID {
		return false, nil
	}
	switch _, err := s.st.Get(ctx, k); {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", k, err)
	}
	return true, nil
}

// splitSettings separates the secret settings from the others. A null secret is dropped:
// there is nothing to keep.
func splitSettings(in map[string]any) (public, secret map[string]any) {
	for k, v := range in {
		switch {
		case !IsSecretSetting(k):
			if public == nil {
				public = map[string]any{}
			}
			public[k] = v
		case v != nil:
			if secret == nil {
				secret = map[string]any{}
			}
			secret[k] = v
		}
	}
	return public, secret
}

// shown is the destination as it may leave the domain: no ciphertext, and no secret value
// even from an item written before secrets were sealed (such a value is named in SecretsSet
// and dropped, never returned).
func (rec destinationRecord) shown() Destination {
	d := rec.Destination
	var legacy []string
	for k := range d.Settings {
		if IsSecretSetting(k) {
			legacy = append(legacy, k)
		}
	}
	if len(legacy) > 0 {
		d.Settings = maps.Clone(d.Settings)
		for _, k := range legacy {
			delete(d.Settings, k)
		}
		set := append(slices.Clone(d.SecretsSet), legacy...)
		slices.Sort(set)
		d.SecretsSet = slices.Compact(set)
	}
	return d
}

// ListDestinations returns the workspace's destinations in creation order, without their
// secret settings' values.
// Caller: the workspace's token. Errors: forbidden.
func (s *Service) ListDestinations(ctx context.Context, p Principal, wsID string) ([]Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return nil, err
	}
	return s.destinationsOf(ctx, wsID)
}

// GetDestination returns one destination, without its secret settings' values.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetDestination(ctx context.Context, p Principal, wsID, id string) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	return s.Destination(ctx, wsID, id)
}

// DestinationsOf returns every destination of a workspace, as GetDestination shows them, for
// delivery to route messages. There is no principal: the caller is trusted code; never
// expose it through the API.
func (s *Service) DestinationsOf(ctx context.Context, wsID string) ([]Destination, error) {
	return s.destinationsOf(ctx, wsID)
}

// Destination returns one destination as GetDestination shows it, for trusted code
// (delivery) acting for the workspace: there is no principal; never expose it through the API.
// Errors: not_found.
func (s *Service) Destination(ctx context.Context, wsID, id string) (Destination, error) {
	rec, _, err := s.loadDestination(ctx, wsID, id)
	if err != nil {
		return Destination{}, err
	}
	return rec.shown(), nil
}

// DestinationChange is a partial update; nil fields are left as they are. The category, type
// and settings are fixed at creation: the secrets among them are never shown, so an edit
// could not be checked against them; a new configuration is a new destination.
type DestinationChange struct {
	Name    *string
	Enabled *bool
	// SourceIDs replaces the list; an empty one means every source of the workspace.
	SourceIDs *[]string
}

// UpdateDestination renames, pauses or resumes a destination, or changes the sources it
// takes, as a versioned replace: of two concurrent updates neither is lost.
// Caller: the workspace's token. Errors: forbidden, not_found, invalid_field,
// concurrent_update (409).
func (s *Service) UpdateDestination(ctx context.Context, p Principal, wsID, id string, ch DestinationChange) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	if ch.Name != nil {
		if err := validName("name", *ch.Name); err != nil {
			return Destination{}, err
		}
	}
	var sourceIDs []string
	if ch.SourceIDs != nil && len(*ch.SourceIDs) > 0 {
		sourceIDs = slices.Clone(*ch.SourceIDs)
	}
	var out destinationRecord
	err := retryOnRace(ctx, func() error {
		rec, version, err := s.loadDestination(ctx, wsID, id)
		if err != nil {
			return err
		}
		if ch.Name == nil && ch.Enabled == nil && ch.SourceIDs == nil {
			out = rec
			return nil
		}
		if ch.Name != nil {
			rec.Name = *ch.Name
		}
		if ch.Enabled != nil {
			rec.Enabled = *ch.Enabled
		}
		if ch.SourceIDs != nil {
			if err := validSourceIDs(rec.Type, rec.Settings, sourceIDs); err != nil {
				return err
			}
			if err := s.checkSourcesExist(ctx, wsID, sourceIDs); err != nil {
				return err
			}
			rec.SourceIDs = sourceIDs
		}
		if err := s.st.Transact(ctx, store.ReplaceOp(rec.item(), version)); err != nil {
			if store.FailedOp(err) == 0 {
				return errRace // changed or deleted meanwhile: look again
			}
			return err
		}
		out = rec
		return nil
	})
	if err != nil {
		return Destination{}, err
	}
	return out.shown(), nil
}

// DestinationSettings returns every setting of a destination, its secrets opened: what
// delivery needs to reach it. There is no principal: the caller is trusted code acting for
// the workspace (delivery), and must never show or log the result.
// Errors: not_found, secrets_not_configured (500); secrets.ErrOpen (wrapped) when the sealed
// settings do not open for this workspace.
func (s *Service) DestinationSettings(ctx context.Context, wsID, id string) (map[string]any, error) {
	rec, _, err := s.loadDestination(ctx, wsID, id)
	if err != nil {
		return nil, err
	}
	out := maps.Clone(rec.Settings)
	if out == nil {
		out = map[string]any{}
	}
	if len(rec.SealedSecrets) == 0 {
		return out, nil
	}
	if s.secrets == nil {
		return nil, noSecrets("the destination's secret settings")
	}
	plain, err := s.secrets.Open(ctx, rec.SealedSecrets, destinationAAD(wsID))
	if err != nil {
		return nil, fmt.Errorf("open the settings of destination %s of %s: %w", id, wsID, err)
	}
	var secret map[string]any
	if err := json.Unmarshal(plain, &secret); err != nil {
		return nil, fmt.Errorf("decode the settings of destination %s of %s: %w", id, wsID, err)
	}
	maps.Copy(out, secret)
	return out, nil
}

func destinationNotFound(wsID, id string) error {
	return errcode.NotFoundf("destination %s was not found in workspace %s", errcode.Clip(id), wsID)
}

// DeleteDestination deletes a destination, freeing its slot.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) DeleteDestination(ctx context.Context, p Principal, wsID, id string) error {
	if err := p.Owns(wsID); err != nil {
		return err
	}
	err := s.st.Transact(ctx,
		store.DeleteOp(destinationKey(wsID, id), store.MustExist),
		store.AddOp(usageKey(wsID, ResourceDestinations), -1, 0))
	if store.FailedOp(err) == 0 {
		return destinationNotFound(wsID, id)
	}
	return err
}
