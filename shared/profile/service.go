package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/token"
)

// Service is the profile domain's entry point.
type Service struct {
	st  store.Store
	now func() time.Time
	ids token.IDs
	log *slog.Logger

	configs       configCache
	traitDefs     versionCache[compiledTraits]
	predictions   versionCache[compiledPredictions]
	heads         headCache
	backfillDelay time.Duration
}

// Options configure a Service.
type Options struct {
	Now func() time.Time // time.Now when nil
	// BackfillDelay is how long a new computed trait waits before its backfill starts
	// (DefaultBackfillDelay when 0; see there for why it waits at all).
	BackfillDelay time.Duration
	// Logger takes what fails without failing a call (a daily counter lost after its
	// message committed); slog.Default() when nil.
	Logger *slog.Logger
}

// New returns a Service on st.
func New(st store.Store, opts Options) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	delay := opts.BackfillDelay
	if delay <= 0 {
		delay = DefaultBackfillDelay
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Service{st: st, now: func() time.Time { return now().UTC() }, ids: token.IDs{Now: now}, log: log,
		backfillDelay: delay}
}

// Settings returns a space's identity settings (the defaults until they are first saved).
// The caller has checked that the space is the caller's.
func (s *Service) Settings(ctx context.Context, spaceID string) (identity.Settings, error) {
	set, _, err := s.settings(ctx, spaceID)
	return set, err
}

func (s *Service) settings(ctx context.Context, spaceID string) (identity.Settings, int64, error) {
	it, err := s.st.Get(ctx, settingsKey(spaceID))
	if errors.Is(err, store.ErrNotFound) {
		return identity.DefaultSettings(), 0, nil
	}
	if err != nil {
		return identity.Settings{}, 0, fmt.Errorf("read identity settings of %s: %w", spaceID, err)
	}
	var set identity.Settings
	if err := json.Unmarshal(it.Data, &set); err != nil {
		return identity.Settings{}, 0, fmt.Errorf("decode identity settings of %s: %w", spaceID, err)
	}
	return set, it.Version, nil
}

// SaveSettings replaces a space's identity settings; they apply to data that arrives from
// now on. Errors: invalid_field (400) naming the path of the first problem.
func (s *Service) SaveSettings(ctx context.Context, spaceID string, set identity.Settings) (identity.Settings, error) {
	if err := set.Validate(); err != nil {
		return identity.Settings{}, err
	}
	set = set.Normalize()
	for attempt := 0; ; attempt++ {
		_, version, err := s.settings(ctx, spaceID)
		if err != nil {
			return identity.Settings{}, err
		}
		err = s.st.Transact(ctx, store.ReplaceOp(store.JSONItem(settingsKey(spaceID), set), version))
		if err == nil {
			s.configs.forget(spaceID)
			return set, nil
		}
		if store.FailedOp(err) != 0 || attempt == maxAttempts {
			return identity.Settings{}, err
		}
	}
}

// getMany reads any number of keys, store.MaxGets per round trip, adding them to got.
func (s *Service) getMany(ctx context.Context, got map[store.Key]store.Item, keys []store.Key) error {
	for len(keys) > 0 {
		n := min(len(keys), store.MaxGets)
		part, err := s.st.GetMany(ctx, keys[:n]...)
		if err != nil {
			return err
		}
		maps.Copy(got, part)
		keys = keys[n:]
	}
	return nil
}

// errContended marks a lost race; Apply starts over from fresh state.
var errContended = errors.New("profile: lost a race")

func contention(spaceID string) error {
	// Unavailable (503), not Conflict: the message itself is fine and a retry applies it;
	// SDKs and Twilio retry 5xx, not 409.
	return errcode.New(errcode.Unavailable, "identity_contention",
		"the identity graph of space %s kept changing under this message (%d attempts); it was not applied, retry it", spaceID, maxAttempts)
}
