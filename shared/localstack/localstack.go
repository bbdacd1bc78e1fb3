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

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Config of a local stack.
type Config struct {
	DataDir           string // the store file lives here
	OperatorTokenHash string
	PublicURL         string // optional; see httpapi.AdminOptions
	Logger            *slog.Logger
}

// Stack is a running local stack.
type Stack struct {
	Handler http.Handler
	// Profiles is the ingest entry point (profile.Service.Apply) the stack's APIs share.
	Profiles *profile.Service
	store    *bolt.Store
}

// Open opens the store in cfg.DataDir and mounts the APIs.
func Open(cfg Config) (*Stack, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	st, err := bolt.Open(filepath.Join(cfg.DataDir, "up.db"))
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: cfg.OperatorTokenHash})
	profiles := profile.New(st, profile.Options{})
	mux := httpapi.NewMux()
	httpapi.MountAdmin(mux, svc, profiles, httpapi.AdminOptions{Logger: log, PublicURL: cfg.PublicURL})
	httpapi.MountProfiles(mux, svc, profiles, httpapi.ProfilesOptions{Logger: log})
	return &Stack{Handler: httpapi.Logged(mux, log), Profiles: profiles, store: st}, nil
}

// Close closes the store.
func (s *Stack) Close() error { return s.store.Close() }
