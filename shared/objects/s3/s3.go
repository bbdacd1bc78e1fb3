// Package s3 implements objects.Store on one Amazon S3 bucket (or an S3-compatible endpoint
// such as shared/locals3 in the local stack).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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

// Open streams the object at key: the caller reads the HTTP response body as it arrives and
// must Close it. A missing key is objects.ErrNotFound.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		var noKey *types.NoSuchKey
		var notFound *types.NotFound
		if errors.As(err, &noKey) || errors.As(err, &notFound) {
			return nil, fmt.Errorf("objects/s3: open %q: %w", key, objects.ErrNotFound)
		}
		return nil, fmt.Errorf("objects/s3: open %q: %w", key, err)
	}
	return out.Body, nil
}
