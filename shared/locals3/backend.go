package locals3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"hash"
	"io"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
)

// notifyingBackend is the bolt backend plus the notification gofakes3 does not emit: after
// an object is stored it calls onCreated. gofakes3 routes every write through this value —
// PUT, browser POST, CopyObject, and CompleteMultipartUpload (the bolt backend has no
// multipart support of its own, so gofakes3's uploader assembles the parts and calls
// PutObject here). The bolt backend's own CopyObject writes through the embedded value, so
// a copy notifies exactly once.
type notifyingBackend struct {
	*s3bolt.Backend
	ctx       context.Context
	onCreated func(ctx context.Context, bucket, key string, size int64, etag string)
}

var _ gofakes3.Backend = (*notifyingBackend)(nil)

// PutObject stores the object, hashing and counting the bytes the bolt backend reads, then
// notifies with the size and ETag of what was stored.
func (b *notifyingBackend) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if b.onCreated == nil {
		return b.Backend.PutObject(bucket, key, meta, input, size, conditions)
	}
	cr := &countingHash{r: input, h: md5.New()}
	res, err := b.Backend.PutObject(bucket, key, meta, cr, size, conditions)
	if err != nil {
		return res, err
	}
	b.onCreated(b.ctx, bucket, key, cr.n, hex.EncodeToString(cr.h.Sum(nil)))
	return res, nil
}

// CopyObject copies the object, then notifies with the stored copy's size and ETag.
func (b *notifyingBackend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	res, err := b.Backend.CopyObject(srcBucket, srcKey, dstBucket, dstKey, meta)
	if err != nil || b.onCreated == nil {
		return res, err
	}
	obj, err := b.Backend.HeadObject(dstBucket, dstKey)
	if err != nil {
		// Stored, but gone again (a concurrent delete): nothing left to announce.
		return res, nil
	}
	_ = obj.Contents.Close()
	b.onCreated(b.ctx, dstBucket, dstKey, obj.Size, hex.EncodeToString(obj.Hash))
	return res, nil
}

// countingHash passes reads through, hashing and counting them.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}
