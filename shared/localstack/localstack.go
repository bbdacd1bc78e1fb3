// Package localstack assembles every API on the embedded store in one process: what
// `make run` serves and what the benchmarks measure. In AWS each function wires the same
// handlers to DynamoDB instead.
package localstack

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Config of a local stack.
type Config struct {
	DataDir           string // the store file lives here
	OperatorTokenHash string
	PublicURL         string // optional; see httpapi.AdminOptions
	Logger            *slog.Logger
	// Tracking configures the tracking API (its Logger and Now are filled in from here).
	Tracking httpapi.TrackingOptions
	// Now is every component's clock (time.Now when nil): tests move time without sleeping.
	Now func() time.Time
}

// Stack is a running local stack.
type Stack struct {
	Handler http.Handler
	// Profiles is the ingest entry point (profile.Service.Apply) the stack's APIs share.
	Profiles *profile.Service
	// Workspaces and Tracking are the stack's other services, for tests and benchmarks.
	Workspaces *workspace.Service
	Tracking   *tracking.Service
	store      *bolt.Store
}

// Open opens the store in cfg.DataDir and mounts the APIs.
func Open(cfg Config) (*Stack, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "up.db"), bolt.WithClock(now))
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: cfg.OperatorTokenHash, Now: now})
	profiles := profile.New(st, profile.Options{Now: now})
	tr := tracking.New(st, svc, profiles, tracking.Options{Logger: log, Now: now})
	mux := httpapi.NewMux()
	httpapi.MountAdmin(mux, svc, profiles, tr, httpapi.AdminOptions{Logger: log, PublicURL: cfg.PublicURL})
	httpapi.MountProfiles(mux, svc, profiles, httpapi.ProfilesOptions{Logger: log, Now: now})
	topts := cfg.Tracking
	topts.Logger, topts.Now = log, now
	httpapi.MountTracking(mux, tr, topts)
	return &Stack{Handler: httpapi.Logged(mux, log), Profiles: profiles, Workspaces: svc, Tracking: tr, store: st}, nil
}

// Close closes the store.
func (s *Stack) Close() error { return s.store.Close() }
