// Package s3 implements objects.Store on one Amazon S3 bucket (or an S3-compatible endpoint
// such as shared/locals3 in the local stack).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/unifiedprofiles/up/shared/objects"
)

// Store reads and presigns the objects of one bucket.
type Store struct {
	client  *awss3.Client
	presign *awss3.PresignClient
	bucket  string
}

var _ objects.Store = (*Store)(nil)

// New returns a Store on bucket through client.
func New(client *awss3.Client, bucket string) *Store {
	return &Store{client: client, presign: awss3.NewPresignClient(client), bucket: bucket}
}

// OpenFromEnv opens the bucket named by UP_UPLOADS_BUCKET with the standard AWS configuration
// (region, credentials, and AWS_ENDPOINT_URL_S3 for a local S3-compatible endpoint). When an
// endpoint override is set the client uses path-style addressing (http://host/bucket/key),
// which local servers need. The SDK's default HTTP client is kept: it honours AWS_CA_BUNDLE.
func OpenFromEnv(ctx context.Context) (*Store, error) {
	bucket := os.Getenv("UP_UPLOADS_BUCKET")
	if bucket == "" {
		return nil, errors.New("UP_UPLOADS_BUCKET is not set: name the uploads bucket")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		// BaseEndpoint is filled in from AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL, or the
		// shared config's endpoint_url) before these options run.
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.UsePathStyle = true
		}
	})
	return New(client, bucket), nil
}

// PresignPost returns a browser form upload to exactly key, of 1 to maxBytes bytes, valid for
// expires. The policy's conditions: the bucket, the key (eq), content-length-range 1..maxBytes,
// and the SigV4 fields the SDK adds (algorithm, credential, date).
func (s *Store) PresignPost(ctx context.Context, key string, maxBytes int64, expires time.Duration) (objects.Post, error) {
	switch {
	case key == "":
		return objects.Post{}, errors.New("objects/s3: presign post: empty key")
	case maxBytes < 1:
		return objects.Post{}, fmt.Errorf("objects/s3: presign post: maxBytes %d < 1", maxBytes)
	case expires <= 0:
		// The SDK would silently use 15 minutes for 0.
		return objects.Post{}, fmt.Errorf("objects/s3: presign post: expiry %s is not positive", expires)
	}
	req, err := s.presign.PresignPostObject(ctx, &awss3.PutObjectInput{Bucket: &s.bucket, Key: &key},
		func(o *awss3.PresignPostOptions) {
			o.Expires = expires
			o.Conditions = []any{
				map[string]string{"key": key},
				[]any{"content-length-range", 1, maxBytes},
			}
		})
	if err != nil {
		return objects.Post{}, fmt.Errorf("objects/s3: presign post %q: %w", key, err)
	}
	return objects.Post{Method: "POST", URL: req.URL, Fields: req.Values}, nil
}

// Open streams the object at key that pin names: the caller reads the HTTP response body as
// it arrives and must Close it. The read is conditional (If-Match on the ETag, VersionId in a
// versioned bucket), so S3 itself refuses to serve anything else; the answer's ETag and
// version are checked too, so an endpoint that ignored the condition cannot slip another
// object in. A missing key or version is objects.ErrNotFound; a replaced object is
// objects.ErrChanged.
func (s *Store) Open(ctx context.Context, key string, pin objects.Pin) (io.ReadCloser, error) {
	in := &awss3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if pin.ETag != "" {
		in.IfMatch = aws.String(quote(pin.ETag))
	}
	if pin.VersionID != "" {
		in.VersionId = aws.String(pin.VersionID)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		var noKey *types.NoSuchKey
		var notFound *types.NotFound
		var apiErr smithy.APIError
		var status interface{ HTTPStatusCode() int }
		switch {
		case errors.As(err, &noKey) || errors.As(err, &notFound) || errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchVersion":
			return nil, fmt.Errorf("objects/s3: open %q: %w", key, objects.ErrNotFound)
		case errors.As(err, &status) && status.HTTPStatusCode() == http.StatusPreconditionFailed:
			return nil, fmt.Errorf("objects/s3: open %q (ETag %s): %w", key, pin.ETag, objects.ErrChanged)
		}
		return nil, fmt.Errorf("objects/s3: open %q: %w", key, err)
	}
	got := strings.Trim(aws.ToString(out.ETag), `"`)
	if pin.ETag != "" && got != strings.Trim(pin.ETag, `"`) || pin.VersionID != "" && aws.ToString(out.VersionId) != pin.VersionID {
		out.Body.Close()
		return nil, fmt.Errorf("objects/s3: open %q: served ETag %s version %q, pinned ETag %s version %q: %w",
			key, got, aws.ToString(out.VersionId), pin.ETag, pin.VersionID, objects.ErrChanged)
	}
	return out.Body, nil
}

// quote returns etag in double quotes, the form If-Match takes.
func quote(etag string) string { return `"` + strings.Trim(etag, `"`) + `"` }
