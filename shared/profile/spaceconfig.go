package profile

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/unifiedprofiles/up/shared/identity"
)

// configTTL is how long a warm instance applies a space's identity settings and computed-
// trait definitions without reading them again. Reading them for every message would put
// every message of a space on one DynamoDB partition (about 1,500 strongly consistent
// reads a second); cached, an instance reads them at most once per configTTL. A change
// made through this Service takes effect at once here, and within configTTL everywhere.
const configTTL = time.Second

// spaceConfig is what Apply needs of a space besides the message: its compiled identity
// rules and computed-trait definitions, and when they were read.
type spaceConfig struct {
	rules     *identity.Compiled
	rulesVer  int64 // the settings item's version; 0: never saved, the defaults
	defs      compiledTraits
	preds     compiledPredictions // an identify may not set their keys either
	fetchedAt time.Time
}

// configCache keeps each space's config for configTTL.
type configCache struct {
	mu sync.Mutex
	m  map[string]spaceConfig
}

func (c *configCache) get(spaceID string) (spaceConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, ok := c.m[spaceID]
	return cfg, ok
}

func (c *configCache) put(spaceID string, cfg spaceConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]spaceConfig{}
	}
	c.m[spaceID] = cfg
}

// forget drops a space's config after this Service changed it.
func (c *configCache) forget(spaceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, spaceID)
}

// config returns a space's config, read at most configTTL ago (its three items in one round
// trip; the rules are compiled again only when their version changed).
func (s *Service) config(ctx context.Context, spaceID string) (spaceConfig, error) {
	now := s.now()
	cached, ok := s.configs.get(spaceID)
	if ok && now.Sub(cached.fetchedAt) < configTTL {
		return cached, nil
	}
	sk := settingsKey(spaceID)
	got, err := s.st.GetMany(ctx, sk, traitsKey(spaceID), predictionsKey(spaceID))
	if err != nil {
		return spaceConfig{}, fmt.Errorf("read the configuration of space %s: %w", spaceID, err)
	}
	cfg := spaceConfig{fetchedAt: now}
	settings, hasSettings := got[sk] // absent: version 0, the defaults
	if ok && settings.Version == cached.rulesVer {
		cfg.rules, cfg.rulesVer = cached.rules, cached.rulesVer
	} else {
		set := identity.DefaultSettings()
		if hasSettings {
			set = identity.Settings{}
			if err := json.Unmarshal(settings.Data, &set); err != nil {
				return spaceConfig{}, fmt.Errorf("decode identity settings of %s: %w", spaceID, err)
			}
		}
		rules, err := identity.Compile(set)
		if err != nil {
			return spaceConfig{}, fmt.Errorf("stored identity settings of %s do not compile: %w", spaceID, err)
		}
		cfg.rules, cfg.rulesVer = rules, settings.Version
	}
	if cfg.defs, cfg.preds, err = s.decodeDefinitions(spaceID, got); err != nil {
		return spaceConfig{}, err
	}
	s.configs.put(spaceID, cfg)
	return cfg, nil
}

// Rules returns a space's identity settings, compiled: what Apply extracts identifiers with.
// A caller that must refuse a message without identifiers up front (a CSV upload, validated
// whole before anything is written) extracts with them.
func (s *Service) Rules(ctx context.Context, spaceID string) (*identity.Compiled, error) {
	cfg, err := s.config(ctx, spaceID)
	return cfg.rules, err
}
