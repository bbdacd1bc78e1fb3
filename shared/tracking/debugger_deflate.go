package tracking

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"sync"
)

// A stored debugger item is its JSON, DEFLATE-compressed behind a one-byte marker when that
// is at least minDeflate bytes long. A request's item holds every message it carried as
// received and is written once and read only by people troubleshooting; compressed it is
// about a tenth of the size (a batch of 100: about 69 KB of JSON, so 69 DynamoDB write units,
// become a few KB), which matters more than the microsecond it costs. Items stored before
// this (plain JSON) still read: JSON never starts with the marker.
const (
	deflatedMarker = 0x01
	minDeflate     = 512
	maxInflated    = 4 << 20 // far above any item (debuggerItemBytes); a bigger one is refused, not read
)

var deflaters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // BestSpeed is a valid level: no error
	return w
}}

var inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// packDebuggerItem returns the stored form of a debugger item's JSON.
func packDebuggerItem(data []byte) []byte {
	if len(data) < minDeflate {
		return data
	}
	out := bytes.NewBuffer(append(make([]byte, 0, len(data)/4+64), deflatedMarker))
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(out)
	// Writes into memory do not fail.
	w.Write(data)
	w.Close()
	return out.Bytes()
}

// unpackDebuggerItem returns the JSON of a stored debugger item.
func unpackDebuggerItem(stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] != deflatedMarker {
		return stored, nil
	}
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(stored[1:]), nil); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(data) > maxInflated {
		return nil, fmt.Errorf("inflate: more than %d bytes", maxInflated)
	}
	return data, nil
}
