package tracking

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"math"
	"strings"
	"sync"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// Decompress returns body gunzipped when contentEncoding is "gzip" OR the body starts with the
// gzip magic bytes 0x1f 0x8b (RudderStack's SDK sends gzip with Content-Type
// application/x-www-form-urlencoded), else body unchanged. The result may not exceed limit
// bytes (read at most limit+1 bytes, never inflate unboundedly). Errors: *errcode.Error{Kind:
// errcode.Invalid, Code: "invalid_gzip"} for a corrupt stream; {Kind: errcode.Invalid, Code:
// "request_too_large"} naming the limit in its message when over limit.
func Decompress(body []byte, contentEncoding string, limit int) ([]byte, error) {
	limit = max(limit, 0)
	enc := strings.ToLower(strings.TrimSpace(contentEncoding))
	isGzip := enc == "gzip" || enc == "x-gzip" || (len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b)
	if !isGzip || len(body) == 0 { // an empty body has nothing to inflate; Parse says it is empty
		if len(body) > limit {
			return nil, errcode.New(errcode.Invalid, "request_too_large",
				"the request body is %d bytes; the limit is %d bytes per request", len(body), limit)
		}
		return body, nil
	}

	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		err = zr.Reset(bytes.NewReader(body))
	}
	if err != nil {
		return nil, invalidGzip(err)
	}
	defer gzipReaders.Put(zr)

	// One byte more than the limit tells "exactly at the limit" from "over it" without
	// inflating the rest: a small body can expand a thousandfold.
	n := int64(limit)
	if n < math.MaxInt64 {
		n++
	}
	out, err := readAtMost(zr, n, len(body))
	if err != nil {
		return nil, invalidGzip(err)
	}
	if len(out) > limit {
		return nil, errcode.New(errcode.Invalid, "request_too_large",
			"the request body is over %d bytes once decompressed; the limit is %d bytes per request", limit, limit)
	}
	return out, nil
}

// gzipReaders recycles readers: each holds a 32 KB window and tables worth not reallocating for
// every request.
var gzipReaders sync.Pool

// readAtMost reads r until EOF or n bytes (EOF is what makes gzip check the CRC and length).
func readAtMost(r io.Reader, n int64, compressed int) ([]byte, error) {
	// Sized for a typical JSON ratio, capped by n, so that a bomb cannot make us allocate more
	// than the limit up front.
	size := int64(max(512, 4*compressed))
	size = min(size, n)
	buf := make([]byte, 0, size)
	for {
		if int64(len(buf)) >= n {
			return buf, nil
		}
		if len(buf) == cap(buf) {
			// Doubling, capped at n: append's gentler growth for large slices would allocate
			// several times the limit on the way to it.
			grown := make([]byte, len(buf), min(2*int64(cap(buf)), n))
			copy(grown, buf)
			buf = grown
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func invalidGzip(err error) *errcode.Error {
	return errcode.New(errcode.Invalid, "invalid_gzip", "the body is not a valid gzip stream (%v); send it uncompressed or gzip it whole", err)
}
