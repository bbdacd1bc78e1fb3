// Package s3event is the csv-ingest function's handler: it turns S3 object-created
// notifications into upload processing. The Lambda and the local stack's S3 both call it
// with a real events.S3Event.
package s3event

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/unifiedprofiles/up/shared/upload"
)

// Handler returns the function processing every record of an event. An error makes the
// platform deliver the event again (Lambda retries asynchronous invocations); processing
// is idempotent, so records that succeeded are simply acknowledged again.
func Handler(svc *upload.Service) func(ctx context.Context, ev events.S3Event) error {
	return func(ctx context.Context, ev events.S3Event) error {
		var errs []error
		for _, rec := range ev.Records {
			if !strings.HasPrefix(rec.EventName, "ObjectCreated:") {
				continue
			}
			// Keys arrive URL-encoded (a space as "+"), as S3 sends them.
			key, err := url.QueryUnescape(rec.S3.Object.Key)
			if err != nil {
				errs = append(errs, fmt.Errorf("object key %q: %w", rec.S3.Object.Key, err))
				continue
			}
			// The object as stored when the event was sent: the upload reads that one, pinned
			// by its ETag (and version, in a versioned bucket), and no later replacement.
			obj := upload.Object{Key: key, ETag: rec.S3.Object.ETag, VersionID: rec.S3.Object.VersionID,
				Size: rec.S3.Object.Size, StoredAt: rec.EventTime}
			if err := svc.Process(ctx, obj); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
		return errors.Join(errs...)
	}
}

// ObjectCreated is the event S3 sends when an object is stored at at, for the local stack
// (an unversioned bucket: no version id).
func ObjectCreated(bucket, key string, size int64, etag string, at time.Time) events.S3Event {
	return events.S3Event{Records: []events.S3EventRecord{{
		EventVersion: "2.1", EventSource: "aws:s3", AWSRegion: "us-east-1", EventName: "ObjectCreated:Post", EventTime: at.UTC(),
		S3: events.S3Entity{
			SchemaVersion: "1.0",
			Bucket:        events.S3Bucket{Name: bucket, Arn: "arn:aws:s3:::" + bucket},
			Object:        events.S3Object{Key: url.QueryEscape(key), Size: size, ETag: strings.Trim(etag, `"`)},
		},
	}}}
}
