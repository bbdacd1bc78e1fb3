package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/errcode"
)

// sdkSettings is the body of GET /v1/projects/{writeKey}/settings: what Segment's browser and
// mobile SDKs fetch before they send (Segment serves it from its CDN). Only what points the
// SDK at this deployment is set; everything else is left to the SDKs' defaults.
type sdkSettings struct {
	Integrations struct {
		SegmentIO segmentIOSettings `json:"Segment.io"`
	} `json:"integrations"`
	Plan struct {
		Track    struct{} `json:"track"`
		Identify struct{} `json:"identify"`
		Group    struct{} `json:"group"`
	} `json:"plan"`
	// Metrics: analytics-next reports its own telemetry to Segment's API unless the sample
	// rate is 0; nothing of a user's page goes to a third party.
	Metrics struct {
		SampleRate int `json:"sampleRate"`
	} `json:"metrics"`
}

type segmentIOSettings struct {
	APIKey   string `json:"apiKey"`
	APIHost  string `json:"apiHost"`  // host[:port]/v1: the SDKs post to <protocol>://<apiHost>/<path>
	Protocol string `json:"protocol"` // http on the local stack, https behind API Gateway
}

// settings answers GET /v1/projects/{writeKey}/settings for an enabled source's write key.
func (t *trackingAPI) settings(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("writeKey")
	if _, err := t.svc.Authenticate(r.Context(), key); err != nil {
		if errcode.Is(err, "invalid_write_key") {
			return errcode.NotFoundf("no enabled source has this write key; copy it from the source's settings")
		}
		return err
	}
	base := baseURL(t.publicURL, r)
	protocol, host, _ := strings.Cut(base, "://")
	var out sdkSettings
	out.Integrations.SegmentIO = segmentIOSettings{APIKey: key, APIHost: host + "/v1", Protocol: protocol}
	// Short: a disabled source stops being configured within a minute.
	w.Header().Set("Cache-Control", "public, max-age=60")
	writeJSON(w, http.StatusOK, out)
	return nil
}

// sdkFiles serves the vendored analytics-next bundle (at browsersdk.BundlePath) and its
// chunks (under browsersdk.ChunkPrefix), gzipped when the browser takes it. The files and
// their ETags are read once, when the API is mounted, not per request.
type sdkFiles map[string]sdkFileEntry

type sdkFileEntry struct {
	browsersdk.File
	etag, gzipETag string // one per representation: the gzip bytes are another entity
}

func loadSDKFiles() sdkFiles {
	out := sdkFiles{}
	for _, name := range browsersdk.Names() {
		f, _ := browsersdk.Open(name)
		sum := sha256.Sum256(f.Plain)
		tag := hex.EncodeToString(sum[:16])
		out[name] = sdkFileEntry{File: f, etag: `"` + tag + `"`, gzipETag: `"` + tag + `-gz"`}
	}
	return out
}

// handler serves the file name, or the one the path's {file} names when name is "".
func (files sdkFiles) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file := name
		if file == "" {
			file = r.PathValue("file")
		}
		f, ok := files[file]
		if !ok {
			writeError(w, r, slog.Default(), errcode.NotFoundf("there is no SDK file %s here; the bundle is %s", errcode.Clip(r.URL.Path), browsersdk.BundlePath))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Vary", "Accept-Encoding")
		h.Set("X-Content-Type-Options", "nosniff")
		if f.Immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "public, max-age=3600") // the bundle's URL has no version in it
		}
		body, etag := f.Plain, f.etag
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body, etag = f.Gzip, f.gzipETag
		}
		h.Set("ETag", etag)
		// ServeContent answers If-None-Match (304) and ranges.
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip reports whether Accept-Encoding takes gzip (with a non-zero weight).
func acceptsGzip(r *http.Request) bool {
	// All values: behind API Gateway a comma-separated list arrives split into several.
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept-Encoding"), ","), ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		_, q, hasQ := strings.Cut(strings.ReplaceAll(params, " ", ""), "q=")
		if w, err := strconv.ParseFloat(q, 64); hasQ && (err != nil || w == 0) {
			return false
		}
		return true
	}
	return false
}
