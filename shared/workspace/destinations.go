package workspace

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
)

// NewDestination is what a user asks for when adding a destination.
type NewDestination struct {
	Name     string
	Category string
	Settings map[string]any
}

// destinationRecord is the stored item: the destination with its secret settings sealed
// together (opaque ciphertext, base64 in JSON). The secrets never sit in Settings.
type destinationRecord struct {
	Destination
	SealedSecrets []byte `json:"sealed_secrets,omitempty"`
}

// maxSealedSettings bounds the secret settings of one destination, as JSON: KMS encrypts at
// most 4 KiB directly, and one Encrypt per destination keeps a create to one KMS call.
const maxSealedSettings = 4096

// secretFragments mark a setting as a secret when its name, lower-cased without '_' and '-',
// contains one: password, secret_access_key, the webhook's secret, api_key, auth_token, …
// A name is judged rather than listed one by one, so a new destination type's secret is
// sealed without anyone remembering to add it here.
var secretFragments = []string{"password", "passwd", "passphrase", "secret", "token", "privatekey", "credential", "apikey", "authorization", "signingkey"}

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
// MaxDestinations. Secret settings (IsSecretSetting) are sealed with the Service's Sealer and
// kept apart; the answer names them in SecretsSet and never holds their values. Delivery
// comes with the destinations feature.
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
	if err := validSettings(in.Settings); err != nil {
		return Destination{}, err
	}
	public, secret := splitSettings(in.Settings)
	d := Destination{ID: s.ids.New(destinationIDPrefix), WorkspaceID: wsID, Name: in.Name, Category: in.Category, Settings: public, CreatedAt: s.now()}
	rec := destinationRecord{Destination: d}
	if len(secret) > 0 {
		plain, err := json.Marshal(secret) // strings, numbers, booleans (validSettings): cannot fail
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
	if err := s.createCounted(ctx, wsID, ResourceDestinations, " destinations", item(destinationKey(wsID, d.ID), rec)); err != nil {
		return Destination{}, err
	}
	return rec.shown(), nil
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
	recs, err := list[destinationRecord](ctx, s.st, wsID, destinationPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]Destination, len(recs))
	for i, rec := range recs {
		out[i] = rec.shown()
	}
	return out, nil
}

// GetDestination returns one destination, without its secret settings' values.
// Caller: the workspace's token. Errors: forbidden, not_found.
func (s *Service) GetDestination(ctx context.Context, p Principal, wsID, id string) (Destination, error) {
	if err := p.Owns(wsID); err != nil {
		return Destination{}, err
	}
	rec, _, err := store.LoadJSON[destinationRecord](ctx, s.st, destinationKey(wsID, id), destinationNotFound(wsID, id))
	return rec.shown(), err
}

// DestinationSettings returns every setting of a destination, its secrets opened: what
// delivery needs to reach it. There is no principal: the caller is trusted code acting for
// the workspace (delivery), and must never show or log the result.
// Errors: not_found, secrets_not_configured (500); secrets.ErrOpen (wrapped) when the sealed
// settings do not open for this workspace.
func (s *Service) DestinationSettings(ctx context.Context, wsID, id string) (map[string]any, error) {
	rec, _, err := store.LoadJSON[destinationRecord](ctx, s.st, destinationKey(wsID, id), destinationNotFound(wsID, id))
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
	return errcode.NotFoundf("destination %s was not found in workspace %s", id, wsID)
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
