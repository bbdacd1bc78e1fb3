// Command csv-ingest validates and ingests CSV uploads, triggered by S3 ObjectCreated
// notifications under uploads/. It only wires: the logic is shared/upload.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/unifiedprofiles/up/shared/objects/s3"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/upload/s3event"
	"github.com/unifiedprofiles/up/shared/workspace"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("function", "csv-ingest")
	ctx := context.Background()
	st, err := dynamo.OpenFromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	objs, err := s3.OpenFromEnv(ctx)
	if err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	profiles := profile.New(st, profile.Options{})
	svc := upload.New(st, workspace.New(st, workspace.Options{}), profiles, objs, upload.Options{Logger: log})
	lambda.Start(s3event.Handler(svc))
}
