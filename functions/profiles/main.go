// Command profiles is the Profile API as an AWS Lambda behind API Gateway HTTP API (payload
// 2.0). It only wires: the handler is shared/httpapi, the same code the local stack serves.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/unifiedprofiles/up/shared/httpapi"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	st, err := dynamo.OpenFromEnv(context.Background())
	if err != nil {
		log.Error("profiles: cannot start", "err", err)
		os.Exit(1)
	}
	// No operator token here: the Profile API takes space access tokens only.
	svc := workspace.New(st, workspace.Options{})
	mux := httpapi.NewMux()
	httpapi.MountProfiles(mux, svc, profile.New(st, profile.Options{}), httpapi.ProfilesOptions{Logger: log})
	lambda.Start(httpadapter.NewV2(httpapi.Logged(mux, log)).ProxyWithContext)
}
