// Package objects is the port to the object store that holds uploaded files (S3 in AWS,
// gofakes3 in the local stack). Domain packages use it; objects/s3 implements it.
package objects

import (
	"context"
	"errors"
	"io"
	"time"
)

// Post is a presigned browser upload: a multipart/form-data POST to URL carrying Fields,
// then the file as the last field, named "file".
type Post struct {
	Method string            `json:"method"` // always POST
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

// Store reads and presigns objects of one bucket.
type Store interface {
	// PresignPost returns a browser upload allowed for exactly key, at most maxBytes (and at
	// least 1), until expires from now.
	PresignPost(ctx context.Context, key string, maxBytes int64, expires time.Duration) (Post, error)
	// Open streams the object at key. Errors: ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// ErrNotFound: no object at that key.
var ErrNotFound = errors.New("objects: not found")
