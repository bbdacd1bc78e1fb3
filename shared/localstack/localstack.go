// Package localstack assembles every API in one process, on the embedded store (bbolt) or on
// a DynamoDB table (moto_server, or AWS): what `make run` serves and what the benchmarks
// measure. In AWS each function wires the same handlers to DynamoDB.
package localstack

import (
	"context"
	"errors"
	"fmt"
	"github.com/unifiedprofiles/up/shared/console"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/locals3"
	objs3 "github.com/unifiedprofiles/up/shared/objects/s3"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/secrets/localkey"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/upload/s3event"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Config of a local stack.
type Config struct {
	// DataDir holds the bbolt store file (unless DynamoDB is set), the secrets key, the local
	// S3 endpoint's secret and objects.
	DataDir string
	// DynamoDB, when its Endpoint is set, holds the stack's data instead of bbolt.
	DynamoDB          DynamoDB
	OperatorTokenHash string
	PublicURL         string // optional; see httpapi.AdminOptions
	// ConsoleOrigins may call the admin API from a browser (see httpapi.AdminOptions).
	ConsoleOrigins []string
	Logger         *slog.Logger
	// Tracking configures the tracking API (its Logger and Now are filled in from here).
	Tracking httpapi.TrackingOptions
	// Now is every component's clock (time.Now when nil): tests move time without sleeping.
	Now func() time.Time
	// S3URL is where the caller serves S3Handler (DefaultS3URL when empty): presigned
	// uploads point there.
	S3URL string
	// Uploads configures CSV processing (its Logger and Now are filled in from here).
	Uploads upload.Options
	// BackfillDelay: see profile.Options (profile.DefaultBackfillDelay when 0).
	BackfillDelay time.Duration
	// Warehouse configures Reverse ETL (page size, lease, a hook after each page for crash
	// tests); its Now is filled in from here.
	Warehouse warehouse.Options
	// Delivery tunes destination delivery (backoff, retry window), for tests.
	Delivery DeliveryOptions
	// Salesforce is the connected app Salesforce sources connect through; nil: from
	// UP_SALESFORCE_LOGIN_URL, UP_SALESFORCE_CLIENT_ID and UP_SALESFORCE_CLIENT_SECRET, and
	// without those the Salesforce routes answer salesforce_not_configured.
	Salesforce *sfrest.OAuthApp
}

// DefaultS3URL is the local S3 endpoint's default address (UP_S3_ADDR).
const DefaultS3URL = "http://127.0.0.1:9000"

// The local S3 endpoint's bucket, and the access key of the credentials every request to it
// (and every presigned upload) is signed with. The secret key is generated for each data
// folder (S3SecretFile): a secret written in the source would let any web page sign
// requests, through a DNS name rebound to 127.0.0.1.
const (
	UploadsBucket = "up-uploads"
	s3AccessKey   = "LOCALSTACKACCESSKEY"
	// S3SecretFile, in the data folder, holds the endpoint's secret key (mode 0600).
	S3SecretFile = "s3-secret-key"
)

// Stack is a running local stack.
type Stack struct {
	Handler http.Handler
	// Profiles is the ingest entry point (profile.Service.Apply) the stack's APIs share.
	Profiles *profile.Service
	// Workspaces, Tracking and Uploads are the stack's other services, for tests and benchmarks.
	Workspaces *workspace.Service
	Tracking   *tracking.Service
	Uploads    *upload.Service
	// Warehouse is Reverse ETL: warehouse connections, models, mappings and their syncs.
	Warehouse *warehouse.Service
	// Salesforce connects Salesforce sources and keeps their connections (the sync reads
	// Credentials and Due there).
	Salesforce *salesforce.Connector
	// SalesforceSyncs runs Salesforce sources' syncs (nil without a connected app); the
	// stack dispatches due ones on a ticker.
	SalesforceSyncs *salesforce.Runner
	// Predictions keeps spaces' predictions; the stack runs due ones on a ticker and when
	// one is created or asked to train.
	Predictions *predict.Service
	// S3Handler is the S3-compatible endpoint browsers upload CSV files to; serve it at
	// Config.S3URL. A stored object under uploads/ starts its processing, as the S3
	// notification starts csv-ingest in AWS.
	S3Handler http.Handler
	// Store says where the data is: the bbolt file, or the DynamoDB table and endpoint.
	Store string

	store  store.Store
	s3     *locals3.Server
	cancel context.CancelFunc
	ingest sync.WaitGroup // processing started by S3 notifications
	// stopBackfills ends the background computed-trait backfills.
	stopBackfills func()
	// stopSyncs ends the Reverse ETL worker and dispatcher.
	stopSyncs func()
	// stopDelivery ends the destinations' lanes.
	stopDelivery func()
	// stopPredictions ends the prediction runner.
	stopPredictions func()
}

// Open opens the store (the bbolt file in cfg.DataDir, or cfg.DynamoDB's table, created if
// absent) and mounts the APIs.
func Open(cfg Config) (*Stack, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	st, where, err := openStore(cfg, now)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Workspace secrets (Flex auth tokens) are sealed with a key kept next to the store.
	sealer, err := localkey.LoadOrCreate(filepath.Join(cfg.DataDir, "secrets.key"))
	if err != nil {
		st.Close()
		return nil, err
	}
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: cfg.OperatorTokenHash, Now: now, Secrets: sealer})
	profiles := profile.New(st, profile.Options{Now: now, BackfillDelay: cfg.BackfillDelay})
	dq, outbox := deliveryQueue(st, svc, now)
	tr := tracking.New(st, svc, profiles, tracking.Options{Logger: log, Now: now, Outbox: outbox})
	// Warehouse credentials are sealed with the same key; the drivers are those this build
	// has (BigQuery and Snowflake sources answer that they have none).
	queue := newSyncQueue()
	wopts := cfg.Warehouse
	wopts.Now = now
	wopts.Outbox = outbox
	wh := warehouse.New(st, svc, profiles, sealer, map[string]warehouse.Opener{"postgres": postgres.Open, "redshift": postgres.OpenRedshift}, queue, wopts)
	// Salesforce connections: their refresh tokens are sealed with the same key.
	var oauth salesforce.OAuth
	var sfapp *sfrest.OAuthApp
	sfopts := salesforce.ConnectorOptions{Now: now}
	if app := cfg.Salesforce; app != nil {
		oauth, sfapp = app, app
	} else if app, err := sfrest.FromEnv(); err == nil {
		oauth, sfapp = app, app
	} else {
		sfopts.NotConfigured = err
	}
	sf := salesforce.NewConnector(st, svc, sealer, oauth, sfopts)
	// Salesforce syncs write into the warehouse source through Reverse ETL's connections;
	// without a connected app no source can be connected, so none is ever due.
	var sfRunner *salesforce.Runner
	if sfapp != nil {
		sfRunner = salesforce.NewRunner(sf, wh, sfapp.SyncClient, salesforce.RunnerOptions{Now: now})
	}
	wake := newPredictionWaker()
	preds := predict.New(st, svc, profiles, predict.Options{Now: now, Wake: wake.Wake})
	stack := &Stack{Profiles: profiles, Workspaces: svc, Tracking: tr, Warehouse: wh, Salesforce: sf, SalesforceSyncs: sfRunner, Predictions: preds, Store: where, store: st}
	if err := stack.openS3(cfg, st, log, now); err != nil {
		st.Close()
		return nil, err
	}
	mux := httpapi.NewMux()
	httpapi.MountAdmin(mux, httpapi.Services{Workspaces: svc, Profiles: profiles, Tracking: tr, Uploads: stack.Uploads, Warehouse: wh, Salesforce: sf, SalesforceSyncs: sfRunner, Deliveries: delivery.NewRecords(st, dq, now), Predictions: preds}, httpapi.AdminOptions{Logger: log, PublicURL: cfg.PublicURL, ConsoleOrigins: cfg.ConsoleOrigins})
	httpapi.MountProfiles(mux, svc, profiles, httpapi.ProfilesOptions{Logger: log, Now: now, Limits: st})
	httpapi.MountFlex(mux, svc, profiles, tr, httpapi.FlexOptions{Logger: log, PublicURL: cfg.PublicURL, Now: now})
	topts := cfg.Tracking
	topts.Logger, topts.Now, topts.PublicURL, topts.Limits = log, now, cfg.PublicURL, st
	httpapi.MountTracking(mux, tr, topts)
	httpapi.MountHealth(mux, st, log)
	console.Mount(mux)
	stack.Handler = httpapi.Logged(mux, log)
	stack.stopBackfills = runBackfills(profiles, log)
	stack.stopSyncs = runSyncs(wh, queue, log)
	stack.stopDelivery = runDelivery(st, dq, svc, profiles, tr, cfg.Delivery, now, log)
	stack.stopPredictions = runPredictions(preds, wake, now, log)
	if sfRunner != nil {
		stopRETL, stopSF := stack.stopSyncs, runSalesforceSyncs(sfRunner, now, log)
		stack.stopSyncs = func() { stopSF(); stopRETL() }
	}
	return stack, nil
}

// openStore opens the stack's store and says where it is.
func openStore(cfg Config, now func() time.Time) (store.Store, string, error) {
	if cfg.DynamoDB.Endpoint != "" {
		return openDynamo(cfg.DynamoDB, now)
	}
	path := filepath.Join(cfg.DataDir, "up.db")
	st, err := bolt.Open(path, bolt.WithClock(now))
	if err != nil {
		return nil, "", err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return st, "bbolt " + path, nil
}

// openS3 opens the local S3 endpoint and the upload service on it. Its notifications run
// csv-ingest's handler with a real S3 event, in the background, redelivering a failed one
// with backoff as Lambda retries an asynchronous invocation.
func (s *Stack) openS3(cfg Config, st store.Store, log *slog.Logger, now func() time.Time) error {
	secret, err := s3Secret(filepath.Join(cfg.DataDir, S3SecretFile))
	if err != nil {
		return err
	}
	// Browsers may upload from the console only: the stack's own pages and the configured
	// console origins, as the admin API allows them.
	origins := slices.Clone(cfg.ConsoleOrigins)
	if cfg.PublicURL != "" {
		if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
			origins = append(origins, u.Scheme+"://"+u.Host)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var handle func(context.Context, events.S3Event) error
	srv, err := locals3.Open(locals3.Config{
		DataDir: cfg.DataDir, Bucket: UploadsBucket, AccessKey: s3AccessKey, SecretKey: secret, CORSOrigins: origins,
		OnObjectCreated: func(_ context.Context, bucket, key string, size int64, etag string) {
			if !strings.HasPrefix(key, "uploads/") {
				return
			}
			// The event carries when the object was stored, as S3's does: an upload takes only
			// a file stored before its form expired.
			ev := s3event.ObjectCreated(bucket, key, size, etag, now())
			s.ingest.Add(1)
			go func() {
				defer s.ingest.Done()
				for attempt, wait := 1, time.Second; ; attempt, wait = attempt+1, wait*2 {
					err := handle(ctx, ev)
					if err == nil || ctx.Err() != nil {
						return
					}
					if attempt == 5 {
						log.Error("csv-ingest gave up", "key", key, "attempts", attempt, "err", err)
						return
					}
					log.Warn("csv-ingest failed; delivering again", "key", key, "in", wait, "err", err)
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
				}
			}()
		},
	})
	if err != nil {
		cancel()
		return err
	}
	s3url := cfg.S3URL
	if s3url == "" {
		s3url = DefaultS3URL
	}
	uopts := cfg.Uploads
	uopts.Logger, uopts.Now = log, now
	s.Uploads = upload.New(st, s.Workspaces, s.Profiles, objs3.New(srv.Client(s3url), UploadsBucket), uopts)
	handle = s3event.Handler(s.Uploads)
	s.s3, s.S3Handler = srv, srv.Handler()
	return nil
}

// s3Secret returns the local S3 endpoint's secret key kept at path, creating it (random,
// mode 0600) on first start. A file group or others may read is refused, as the secrets key
// is: the secret signs every request to the endpoint.
func s3Secret(path string) (string, error) {
	read := func() (string, error) {
		f, err := os.Open(path)
		if err != nil {
			return "", err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return "", fmt.Errorf("the S3 secret key file %s has mode %04o, so group or others may read it; make it the owner's alone: chmod 600 %s", path, perm, path)
		}
		b, err := io.ReadAll(io.LimitReader(f, 256))
		if v := strings.TrimSpace(string(b)); err == nil && v == "" {
			return "", fmt.Errorf("the S3 secret key file %s is empty; delete it to have a new one made", path)
		}
		return strings.TrimSpace(string(b)), err
	}
	secret, err := read()
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return read() // another process made it first
	}
	if err != nil {
		return "", fmt.Errorf("create the S3 secret key file: %w", err)
	}
	secret = token.New("")
	_, err = f.WriteString(secret + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write the S3 secret key file: %w", err)
	}
	return secret, nil
}

// Close stops the background work (backfills, syncs, uploads), then closes the S3 endpoint
// and the store. Stop serving Handler and S3Handler first.
func (s *Stack) Close() error {
	s.stopBackfills()
	s.stopSyncs()
	s.stopDelivery()
	s.stopPredictions()
	s.cancel()
	s.ingest.Wait()
	return errors.Join(s.s3.Close(), s.store.Close())
}
