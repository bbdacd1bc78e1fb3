// Package webhook delivers jobs to a webhook destination (ARCHITECTURE.md section 5,
// "Destinations": the analytics and event_streams categories): one HTTP POST per batch.
//
// What the receiver gets:
//   - the body: one job's payload verbatim, or {"batch":[payload,...]} for more than one job
//     (payloads verbatim, in order), so a receiver of single messages sees exactly the
//     message as committed, messageId included, and can deduplicate retries by it;
//   - Content-Type application/json, User-Agent UnifiedProfiles-Webhook/1.0, the
//     destination's custom headers, and, when the destination has a secret,
//     X-Signature: the lowercase hex HMAC-SHA1 of the exact body bytes keyed with the
//     secret, as Segment's webhook destination signs, so existing receivers verify it as is.
//
// A 2xx answer is delivery. 408, 429, 5xx, timeouts and network errors are retried by the
// caller; any other answer (other 4xx, and 3xx, since redirects are not followed) and wrong
// settings are permanent. The sender never connects where package egress forbids (link-local
// addresses: the cloud metadata service lives there), nor to loopback with
// Options.RefuseLoopback, checked when each connection is dialled, so a host name that
// resolves there is refused too.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/egress"
	"github.com/unifiedprofiles/up/shared/workspace"
)

const (
	// DefaultTimeout bounds one Send when Options.Timeout is zero: a slow receiver must not
	// hold its lane for long.
	DefaultTimeout = 10 * time.Second
	// UserAgent names the sender to receivers.
	UserAgent = "UnifiedProfiles-Webhook/1.0"
	// SignatureHeader carries the body's HMAC-SHA1 when the destination has a secret.
	SignatureHeader = "X-Signature"
	// MaxBatchSize is the largest batch_size setting.
	MaxBatchSize = 100

	// maxDrain is how much of an answer is read: enough to reuse the connection after a
	// normal answer, little enough that a hostile receiver cannot make us read forever.
	maxDrain = 64 << 10
	// maxSnippet is how much of an answer's body an error message quotes.
	maxSnippet = 200
	// refusedWhy follows an *egress.RefusedError in messages.
	refusedWhy = "; webhooks may not call it"
)

// Options configure a Sender.
type Options struct {
	// Timeout bounds each Send, from dialling to the answer's headers and drained body;
	// DefaultTimeout when zero.
	Timeout time.Duration
	// Client, when not nil, replaces the sender's own HTTP client (tests). It is used with
	// redirects switched off, but its transport is its own: the egress refusal applies only
	// to the sender's own client.
	Client *http.Client
	// RefuseLoopback refuses loopback and unspecified addresses too. In AWS Lambda 127.0.0.1
	// serves the function's own Runtime API, which a tenant's webhook must never reach;
	// the local stack leaves loopback open (local receivers and tests use it).
	RefuseLoopback bool
}

// Sender posts jobs to webhook destinations. It is safe for concurrent use.
type Sender struct {
	timeout time.Duration
	client  *http.Client
}

var _ delivery.Sender = (*Sender)(nil)

// New returns a Sender.
func New(opts Options) *Sender {
	s := &Sender{timeout: opts.Timeout}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if opts.Client != nil {
		c := *opts.Client
		s.client = &c
	} else {
		s.client = &http.Client{Transport: newTransport(opts.RefuseLoopback)}
	}
	// A redirect could lead anywhere (including where the dial check would not look, through
	// a proxy) and would re-send the signed body: the 3xx itself is the answer.
	s.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s
}

// newTransport is http.DefaultTransport's configuration with the egress refusal at dial
// time, and without a proxy: through a proxy the dial check would see only the proxy.
func newTransport(refuseLoopback bool) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: egress.Control(refuseLoopback)}
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{ForceAttemptHTTP2: true, TLSHandshakeTimeout: 10 * time.Second}
	}
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	tr.MaxIdleConnsPerHost = 8
	return tr
}

// Settings are a webhook destination's settings, checked.
type Settings struct {
	URL       *url.URL
	Secret    string
	Headers   map[string]string // canonical name → value
	BatchSize int               // 1..MaxBatchSize
}

// ParseSettings checks a webhook destination's settings: "url" (http or https, required),
// "secret" (string), "headers" (an object of string values, or a JSON string encoding one),
// "batch_size" (a whole number 1..100, default 1). The API can use it to refuse bad settings
// when a destination is saved; Send refuses them as a permanent error. Error messages name
// settings and header names, never a secret or a header value.
func ParseSettings(settings map[string]any) (Settings, error) {
	var s Settings
	raw, _ := settings["url"].(string)
	if raw == "" {
		return s, errors.New(`webhook: setting "url" is missing`)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		// The URL itself is not quoted: it may carry a token.
		return s, errors.New(`webhook: setting "url" is not an http or https URL`)
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && egress.Forbidden(ip) {
		// Refused before dialling too, so a literal address fails the same way on hosts
		// where its family cannot even open a socket.
		return s, fmt.Errorf(`webhook: setting "url": %w`+refusedWhy, &egress.RefusedError{Addr: ip})
	}
	s.URL = u
	switch v := settings["secret"].(type) {
	case nil:
	case string:
		s.Secret = v
	default:
		return s, errors.New(`webhook: setting "secret" is not a string`)
	}
	if s.Headers, err = parseHeaders(settings["headers"]); err != nil {
		return s, err
	}
	if s.BatchSize, err = BatchSize(settings); err != nil {
		return s, err
	}
	return s, nil
}

// BatchSize is the "batch_size" setting: how many jobs the caller should put in one Send.
func BatchSize(settings map[string]any) (int, error) {
	v, ok := settings["batch_size"]
	if !ok || v == nil {
		return 1, nil
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case int:
		n = float64(x)
	case int64:
		n = float64(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, errors.New(`webhook: setting "batch_size" is not a number`)
		}
		n = f
	default:
		return 0, errors.New(`webhook: setting "batch_size" is not a number`)
	}
	if n != float64(int(n)) || n < 1 || n > MaxBatchSize {
		return 0, fmt.Errorf(`webhook: setting "batch_size" must be a whole number from 1 to %d`, MaxBatchSize)
	}
	return int(n), nil
}

// reservedHeaders are set by the sender or by net/http; a custom header of one of these names
// is ignored, so a setting can neither forge the signature nor break the request's framing.
var reservedHeaders = map[string]bool{
	"Content-Type": true, SignatureHeader: true,
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Trailer": true, "Te": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true,
}

// parseHeaders reads the "headers" setting: a map of string values, or a JSON string that
// encodes one (settings saved through an HTML form arrive that way).
func parseHeaders(v any) (map[string]string, error) {
	var m map[string]any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		m = x
	case map[string]string:
		m = make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
	case string:
		if strings.TrimSpace(x) == "" {
			return nil, nil
		}
		if err := json.Unmarshal([]byte(x), &m); err != nil {
			return nil, errors.New(`webhook: setting "headers" is a string but not a JSON object`)
		}
	default:
		return nil, errors.New(`webhook: setting "headers" is not an object of strings`)
	}
	out := make(map[string]string, len(m))
	for name, v := range m {
		if !workspace.ValidHeaderName(name) {
			return nil, fmt.Errorf(`webhook: setting "headers": %q is not a valid header name`, name)
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf(`webhook: setting "headers": the value of %q is not a string`, name)
		}
		if !workspace.ValidHeaderValue(s) {
			return nil, fmt.Errorf(`webhook: setting "headers": the value of %q has a control character`, name)
		}
		canon := http.CanonicalHeaderKey(name)
		if reservedHeaders[canon] {
			continue
		}
		out[canon] = s
	}
	return out, nil
}

// Body is what Send posts for jobs: one job's payload verbatim, or {"batch":[...]} with the
// payloads verbatim, in order (an empty payload, which is not JSON, as null).
func Body(jobs []delivery.Job) []byte {
	if len(jobs) == 1 {
		return jobs[0].Payload
	}
	n := len(`{"batch":[]}`)
	for _, j := range jobs {
		n += len(j.Payload) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"batch":[`...)
	for i, j := range jobs {
		if i > 0 {
			b = append(b, ',')
		}
		if len(j.Payload) == 0 {
			b = append(b, "null"...)
		} else {
			b = append(b, j.Payload...)
		}
	}
	return append(b, "]}"...)
}

// Sign is the X-Signature of body with secret: lowercase hex HMAC-SHA1.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Send posts jobs to t in one request. See the package comment for the outcomes.
func (s *Sender) Send(ctx context.Context, t delivery.Target, jobs []delivery.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	set, err := ParseSettings(t.Settings)
	if err != nil {
		return delivery.Permanent(err)
	}
	body := Body(jobs)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, set.URL.String(), bytes.NewReader(body))
	if err != nil {
		return delivery.Permanent(fmt.Errorf("webhook: POST %s: cannot build the request", where(set.URL)))
	}
	for k, v := range set.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if _, ok := set.Headers["User-Agent"]; !ok {
		req.Header.Set("User-Agent", UserAgent)
	}
	if set.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(set.Secret, body))
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, set.URL, err)
	}
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil // delivered, whatever happened while draining the answer
	}
	msg := fmt.Sprintf("webhook: POST %s: status %s", where(set.URL), statusText(code))
	if snip := snippet(data, set); snip != "" {
		msg += ": " + snip
	} else if readErr != nil {
		msg += " (answer unreadable)"
	}
	err = errors.New(msg)
	if retryable(code) {
		return err
	}
	return delivery.Permanent(err)
}

// retryable reports whether an answer other than 2xx may succeed later: 408 and 429 (the
// receiver asks for a later try), 5xx, and anything outside the defined ranges.
func retryable(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true
	case code >= 300 && code < 500:
		return false
	}
	return true
}

// transportError classifies a failed request: a refused address is permanent, everything
// else (timeouts, refused or reset connections, TLS and DNS failures) may mend itself. The
// message names the URL's scheme and host only: its path or query may hold a token.
func (s *Sender) transportError(ctx context.Context, u *url.URL, err error) error {
	var re *egress.RefusedError
	if errors.As(err, &re) {
		return delivery.Permanent(fmt.Errorf("webhook: POST %s: %w"+refusedWhy, where(u), re))
	}
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("webhook: POST %s: no answer within %s", where(u), s.timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error's message repeats the whole URL
	}
	return fmt.Errorf("webhook: POST %s: %w", where(u), err)
}

// where is scheme://host of u, for messages.
func where(u *url.URL) string { return u.Scheme + "://" + u.Host }

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// snippet quotes at most maxSnippet bytes of an answer's body, after blanking the secret, the
// custom header values and the URL's query values and password wherever the receiver echoed
// them back: error messages are shown
// to users and kept in the dead-letter list.
func snippet(body []byte, set Settings) string {
	s := string(bytes.TrimSpace(body))
	if s == "" {
		return ""
	}
	if set.Secret != "" {
		s = strings.ReplaceAll(s, set.Secret, "[redacted]")
	}
	for _, v := range set.Headers {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	// The URL's query and password may hold a token too.
	if u := set.URL; u != nil {
		if u.RawQuery != "" {
			s = strings.ReplaceAll(s, u.RawQuery, "[redacted]")
			for _, vs := range u.Query() {
				for _, v := range vs {
					if v != "" {
						s = strings.ReplaceAll(s, v, "[redacted]")
					}
				}
			}
		}
		if pw, ok := u.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, "[redacted]")
		}
	}
	if len(s) > maxSnippet {
		s = s[:maxSnippet] + "…"
	}
	return fmt.Sprintf("%q", s)
}
