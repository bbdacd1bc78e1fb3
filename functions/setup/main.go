// Command setup is the admin / setup API as an AWS Lambda behind API Gateway HTTP API
// (payload 2.0). It only wires: the handler is shared/httpapi, the same code the local stack serves.
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
		log.Error("setup: cannot start", "err", err)
		os.Exit(1)
	}
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: os.Getenv("UP_OPERATOR_TOKEN_SHA256")})
	mux := httpapi.NewMux()
	httpapi.MountAdmin(mux, svc, profile.New(st, profile.Options{}), httpapi.AdminOptions{Logger: log, PublicURL: os.Getenv("UP_PUBLIC_URL")})
	lambda.Start(httpadapter.NewV2(httpapi.Logged(mux, log)).ProxyWithContext)
}
