// Package lambdahttp runs the shared HTTP handlers as an AWS Lambda behind API Gateway HTTP
// API (payload 2.0), on DynamoDB: the part every HTTP function's main would otherwise repeat.
package lambdahttp

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// Serve opens the table named by the environment, lets mount add the function's routes to a
// mux (which already has GET /health), and serves it until the runtime stops the process. A failure to start is logged and
// exits, so the Lambda init fails visibly.
func Serve(name string, mount func(mux *http.ServeMux, st store.Store, log *slog.Logger)) {
	log := logger(name)
	st, err := dynamo.OpenFromEnv(context.Background())
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	mux := httpapi.NewMux()
	httpapi.MountHealth(mux, st, log)
	mount(mux, st, log)
	start(mux, log)
}

// ServeStateless serves routes that read no table (the web console's files): no store is
// opened, and there is no health route to ask one.
func ServeStateless(name string, mount func(mux *http.ServeMux)) {
	mux := httpapi.NewMux()
	mount(mux)
	start(mux, logger(name))
}

func logger(name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", name)
}

func start(mux *http.ServeMux, log *slog.Logger) {
	lambda.Start(httpadapter.NewV2(httpapi.Logged(mux, log)).ProxyWithContext)
}
