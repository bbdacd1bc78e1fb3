// Package locals3 is the S3-compatible endpoint of the local stack: gofakes3 on its bolt
// backend (one file in the data folder), with what the local stack needs and gofakes3 lacks:
//
//   - object-created notifications (gofakes3 emits none): a wrapped backend calls
//     Config.OnObjectCreated after every stored PutObject, CopyObject or completed
//     multipart upload;
//   - authentication (gofakes3 checks none): browser POST uploads must carry a valid policy
//     signature (post.go), every other request a SigV4 signature with Config's credentials
//     (sigv4.go); an unsigned request gets 403 AccessDenied, as from a private S3 bucket;
//   - If-Match on GET and HEAD (gofakes3 ignores it), so a reader pinned to one object is
//     never served a replacement (conditional.go);
//   - CORS for Config.CORSOrigins only, answering preflights and exposing ETag (gofakes3
//     allows every origin and exposes ETag on preflights only): see cors.go.
//
// It is a development endpoint: bind it to loopback.
package locals3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bbolt "go.etcd.io/bbolt"
)

// FileName is the bolt file, under Config.DataDir, that holds every bucket and object.
const FileName = "s3.db"

// DefaultRegion is the region used when Config.Region is empty.
const DefaultRegion = "us-east-1"

// Config of a local S3 endpoint.
type Config struct {
	DataDir string // the bolt file FileName lives here (created if missing)
	Bucket  string // created at Open if it does not exist
	Region  string // the region presigned requests must be signed for; DefaultRegion when empty
	// AccessKey and SecretKey are the only credentials accepted: in the SigV4 signature of
	// every request, and in the policy signature of browser POST uploads.
	AccessKey, SecretKey string
	// CORSOrigins may call the endpoint from a browser (scheme://host[:port]); the answers
	// to any other origin carry no CORS header.
	CORSOrigins []string
	// OnObjectCreated, when not nil, is called after an object is stored (PutObject, browser
	// POST, CopyObject, CompleteMultipartUpload), on the request's goroutine and before the
	// response is written: return quickly, or hand the work to a goroutine. etag is the hex
	// MD5 of the content without quotes, as in an S3 event record. ctx is cancelled by Close.
	OnObjectCreated func(ctx context.Context, bucket, key string, size int64, etag string)
}

// Server is an open local S3 endpoint. Serve Handler() on an address of your choice.
type Server struct {
	cfg     Config
	db      *bbolt.DB
	handler http.Handler
	cancel  context.CancelFunc
	// now is the clock POST policies' expirations and SigV4 dates are checked against
	// (tests move it).
	now func() time.Time
}

// Open opens (or creates) the bolt file in cfg.DataDir and ensures cfg.Bucket exists.
func Open(cfg Config) (*Server, error) {
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("locals3: DataDir is empty")
	case cfg.AccessKey == "" || cfg.SecretKey == "":
		return nil, errors.New("locals3: AccessKey and SecretKey are required")
	}
	if err := gofakes3.ValidateBucketName(cfg.Bucket); err != nil {
		return nil, fmt.Errorf("locals3: bucket %q: %w", cfg.Bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("locals3: data folder: %w", err)
	}
	db, err := bbolt.Open(filepath.Join(cfg.DataDir, FileName), 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("locals3: open %s: %w", FileName, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	backend := &notifyingBackend{Backend: s3bolt.New(db), ctx: ctx, onCreated: cfg.OnObjectCreated}
	if err := ensureBucket(backend, cfg.Bucket); err != nil {
		cancel()
		_ = db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, cancel: cancel, now: time.Now}
	fake := withIfMatch(gofakes3.New(backend).Server())
	s.handler = withCORS(corsOrigins(cfg.CORSOrigins), s.withPostPolicy(fake, s.withSigV4(fake)))
	return s, nil
}

func ensureBucket(b gofakes3.Backend, name string) error {
	exists, err := b.BucketExists(name)
	if err != nil {
		return fmt.Errorf("locals3: bucket %q: %w", name, err)
	}
	if exists {
		return nil
	}
	if err := b.CreateBucket(name); err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
		return fmt.Errorf("locals3: create bucket %q: %w", name, err)
	}
	return nil
}

// Handler serves the S3 API (path-style addressing: /bucket/key).
func (s *Server) Handler() http.Handler { return s.handler }

// Close cancels the context handed to OnObjectCreated and closes the bolt file. Stop serving
// Handler first.
func (s *Server) Close() error {
	s.cancel()
	return s.db.Close()
}

// Client returns an S3 client for this server at endpoint (for example "http://127.0.0.1:9000"):
// the server's region and credentials, path-style addressing, and checksums only when an
// operation requires them (gofakes3 does not speak the SDK's trailing-checksum encoding).
func (s *Server) Client(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:                     s.cfg.Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.cfg.AccessKey, s.cfg.SecretKey, ""),
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}
