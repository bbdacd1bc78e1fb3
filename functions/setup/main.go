// Command setup is the admin / setup API as an AWS Lambda behind API Gateway HTTP API
// (payload 2.0). It only wires: the handler is shared/httpapi, the same code the local stack serves.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/unifiedprofiles/up/shared/delivery"
	dsqs "github.com/unifiedprofiles/up/shared/delivery/sqsqueue"
	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/lambdahttp"
	"github.com/unifiedprofiles/up/shared/objects/s3"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/salesforce"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/secrets/kms"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/tracking"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/warehouse"
	"github.com/unifiedprofiles/up/shared/warehouse/postgres"
	"github.com/unifiedprofiles/up/shared/warehouse/sqsqueue"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	lambdahttp.Serve("setup", func(mux *http.ServeMux, st store.Store, log *slog.Logger) {
		opts := workspace.Options{OperatorTokenHash: os.Getenv("UP_OPERATOR_TOKEN_SHA256")}
		// PUT /v1/workspaces/{ws}/flex seals the Twilio auth token with KMS, and POST
		// …/destinations the destinations' secret settings (encrypt only: neither is ever
		// returned). Without a key the rest of the API still serves, and those requests answer
		// secrets_not_configured.
		switch sealer, err := kms.FromEnv(context.Background()); {
		case err == nil:
			opts.Secrets = sealer
		case errors.Is(err, kms.ErrNoKeyID):
			log.Warn("workspace secrets disabled", "err", err)
		default:
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		svc := workspace.New(st, opts)
		profiles := profile.New(st, profile.Options{})
		tr := tracking.New(st, svc, profiles, tracking.Options{Logger: log})
		objs, err := s3.OpenFromEnv(context.Background())
		if err != nil {
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		uploads := upload.New(st, svc, profiles, objs, upload.Options{Logger: log})
		// Reverse ETL: connections are tested and models previewed here (Postgres and Redshift;
		// the BigQuery and Snowflake drivers live in sync-worker only), and "sync now" and new
		// interval mappings queue their first task on the sync queue.
		var retl *warehouse.Service
		// Predictions: a new one and "train now" send its run to the same queue (without it,
		// the dispatcher's next minute finds the run due).
		popts := predict.Options{}
		switch q, err := sqsqueue.FromEnv(context.Background()); {
		case err == nil:
			retl = warehouse.New(st, svc, profiles, opts.Secrets, map[string]warehouse.Opener{"postgres": postgres.Open, "redshift": postgres.OpenRedshift}, q, warehouse.Options{})
			popts.Wake = func(ctx context.Context, d predict.Due) error {
				return q.Send(ctx, warehouse.Task{Kind: warehouse.TaskPrediction, WorkspaceID: d.WorkspaceID, SpaceID: d.SpaceID, PredictionID: d.PredictionID})
			}
		case errors.Is(err, sqsqueue.ErrNoQueueURL):
			log.Warn("reverse ETL disabled", "err", err)
		default:
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		// Salesforce sources connect through the connected app of the template parameters
		// SalesforceClientId / SalesforceClientSecret; without them the Salesforce routes answer
		// salesforce_not_configured. Refresh tokens are sealed with the KMS key.
		var oauth salesforce.OAuth
		sfopts := salesforce.ConnectorOptions{}
		if app, err := sfrest.FromEnv(); err == nil {
			oauth = app
		} else {
			log.Warn("salesforce sources disabled", "err", err)
			sfopts.NotConfigured = err
		}
		sf := salesforce.NewConnector(st, svc, opts.Secrets, oauth, sfopts)
		// Destinations' delivery records are read here; a replay of dead letters puts them back
		// on the destinations queue (without it, replay answers delivery_not_configured).
		var replayTo delivery.Queue
		switch q, err := dsqs.FromEnv(context.Background()); {
		case err == nil:
			replayTo = q
		case errors.Is(err, dsqs.ErrNoQueueURL):
			log.Warn("dead-letter replay disabled", "err", err)
		default:
			log.Error("cannot start", "err", err)
			os.Exit(1)
		}
		deliveries := delivery.NewRecords(st, replayTo, nil)
		preds := predict.New(st, svc, profiles, popts)
		httpapi.MountAdmin(mux, httpapi.Services{Workspaces: svc, Profiles: profiles, Tracking: tr, Uploads: uploads, Warehouse: retl, Salesforce: sf, Deliveries: deliveries, Predictions: preds},
			httpapi.AdminOptions{Logger: log, PublicURL: os.Getenv("UP_PUBLIC_URL"),
				ConsoleOrigins: strings.Split(os.Getenv("UP_CONSOLE_ORIGIN"), ",")})
	})
}
