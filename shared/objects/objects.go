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

// Pin names one stored object exactly: the ETag an object-created event reported and, in a
// versioned bucket, its version id. A key alone names whatever was stored last, which a
// second upload to the same key can replace between two reads.
type Pin struct {
	ETag      string // without quotes; "" reads whatever is stored (tests and tools only)
	VersionID string // "" in an unversioned bucket
}

// Store reads and presigns objects of one bucket.
type Store interface {
	// PresignPost returns a browser upload allowed for exactly key, at most maxBytes (and at
	// least 1), until expires from now.
	PresignPost(ctx context.Context, key string, maxBytes int64, expires time.Duration) (Post, error)
	// Open streams the object at key that pin names. Errors: ErrNotFound (no object, or not
	// that version), ErrChanged (the object stored at key is no longer the pinned one).
	Open(ctx context.Context, key string, pin Pin) (io.ReadCloser, error)
}

var (
	// ErrNotFound: no object at that key (or no such version).
	ErrNotFound = errors.New("objects: not found")
	// ErrChanged: the object at that key is not the pinned one any more (it was replaced).
	ErrChanged = errors.New("objects: the object changed")
)
