// Package s3sink delivers jobs to an S3 storage destination (ARCHITECTURE.md section 5,
// "Destinations": the storage category, type s3), or to any S3-compatible endpoint.
//
// What it writes: for each Send, the jobs are grouped by source and by the UTC hour in which
// their message was accepted, and each group becomes one object ("one object per source per
// hour part"):
//
//	<prefix>/<source_id>/<yyyy>/<mm>/<dd>/<hh>/<id>.jsonl.gz
//
// (without the prefix, and its slash, when the prefix is empty). The object is gzip of JSON
// lines: each message as delivered (its payload, messageId included), compacted onto one
// line and followed by "\n", in the batch's order. It is stored with Content-Type
// application/gzip and no Content-Encoding, so S3 and the tools that read it (Athena, Spark,
// a download) hand over the .gz file as it is instead of unzipping it on the way.
//
// <id> is the hex of the first 16 bytes of SHA-256 over the group's message ids in order, so
// a retried batch writes the same object again instead of a second copy: delivery is at least
// once, but the files hold each batch once. Readers should still deduplicate by messageId
// across objects, since a message can be queued again (see package delivery).
//
// Settings: "bucket" (required), "prefix", "region" (default: the environment's, else
// us-east-1), "endpoint" (an S3-compatible endpoint URL; addressed path-style),
// "access_key_id" and "secret_access_key" (both required).
//
// Credentials: every write is signed with the destination's own keys, never with the
// deployment's. A target without both keys is refused as permanent before any request, and
// the SDK's default credential chain (the environment, shared files, the instance's or the
// task's role) is never consulted: the bucket is named by a tenant, so writing with the
// deployment's role would let one tenant write into any bucket that trusts that role,
// another tenant's among them.
package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/egress"
)

const (
	// DefaultRegion is used when neither the settings nor the environment name a region.
	DefaultRegion = "us-east-1"
	// DefaultTimeout bounds one object's upload when Options.Timeout is zero.
	DefaultTimeout = 30 * time.Second
	// ContentType of every object written.
	ContentType = "application/gzip"

	// maxClients bounds the client cache; past it the cache starts again (destinations are
	// few, so this only matters if settings keep changing).
	maxClients = 256
	// refusedWhy follows an *egress.RefusedError in messages.
	refusedWhy = "; an S3 endpoint may not be there"
)

// Options configure a Sender.
type Options struct {
	// Timeout bounds each object's upload; DefaultTimeout when zero.
	Timeout time.Duration
}

// Sender writes jobs to S3. It is safe for concurrent use.
type Sender struct {
	timeout time.Duration

	mu sync.Mutex
	// clients holds one client per (endpoint, region, credentials): loading the AWS
	// configuration reads files and the environment and builds a transport, too much to do
	// for every batch, and a shared client reuses its connections.
	clients map[clientKey]*s3.Client
}

var _ delivery.Sender = (*Sender)(nil)

// New returns a Sender.
func New(opts Options) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &Sender{timeout: opts.Timeout, clients: map[clientKey]*s3.Client{}}
}

// Settings are an S3 destination's settings, checked.
type Settings struct {
	Bucket, Prefix, Region, Endpoint string
	AccessKeyID, SecretAccessKey     string
}

// ParseSettings checks an S3 destination's settings. Its errors never quote the secret.
func ParseSettings(settings map[string]any) (Settings, error) {
	var s Settings
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"bucket", &s.Bucket}, {"prefix", &s.Prefix}, {"region", &s.Region}, {"endpoint", &s.Endpoint},
		{"access_key_id", &s.AccessKeyID}, {"secret_access_key", &s.SecretAccessKey},
	} {
		switch v := settings[f.key].(type) {
		case nil:
		case string:
			*f.dst = strings.TrimSpace(v)
		default:
			return Settings{}, fmt.Errorf("s3sink: setting %q is not a string", f.key)
		}
	}
	if s.Bucket == "" {
		return Settings{}, errors.New(`s3sink: setting "bucket" is missing`)
	}
	// Both keys, always: without them the SDK would fall back to the deployment's own
	// credentials (see the package comment).
	if s.AccessKeyID == "" {
		return Settings{}, errors.New(`s3sink: setting "access_key_id" is missing: an S3 destination must carry its own keys; this service never writes with its own role`)
	}
	if s.SecretAccessKey == "" {
		return Settings{}, errors.New(`s3sink: setting "secret_access_key" is missing: an S3 destination must carry its own keys; this service never writes with its own role`)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Settings{}, errors.New(`s3sink: setting "endpoint" is not an http or https URL`)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && egress.Forbidden(ip) {
			return Settings{}, fmt.Errorf(`s3sink: setting "endpoint": %w`+refusedWhy, &egress.RefusedError{Addr: ip})
		}
	}
	return s, nil
}

// Send writes jobs, one object per group (see the package comment). When some groups are
// written and others not, it returns a *delivery.JobErrors naming the jobs of the failed
// groups only, so only they are retried; the objects already written stay.
func (s *Sender) Send(ctx context.Context, t delivery.Target, jobs []delivery.Job) error {
	if len(jobs) == 0 {
		return nil
	}
	set, err := ParseSettings(t.Settings)
	if err != nil {
		return delivery.Permanent(err)
	}
	client, err := s.client(ctx, set)
	if err != nil {
		return err
	}

	errs := make([]error, len(jobs))
	failedGroups, delivered := 0, 0
	var groupErr error
	for _, g := range Group(jobs) {
		err := s.put(ctx, client, set, jobs, g)
		if err == nil {
			delivered += len(g.Index)
			continue
		}
		failedGroups++
		groupErr = err
		for _, i := range g.Index {
			errs[i] = err
		}
	}
	switch {
	case failedGroups == 0:
		return nil
	case delivered == 0 && failedGroups == 1:
		return groupErr // the whole batch, one cause
	}
	return &delivery.JobErrors{Errs: errs}
}

// put writes one group's object.
func (s *Sender) put(ctx context.Context, client *s3.Client, set Settings, jobs []delivery.Job, g GroupOf) error {
	if g.SourceID == "" || strings.Contains(g.SourceID, "/") {
		// The key would lose a path segment, or gain one.
		return delivery.Permanent(fmt.Errorf("s3sink: source id %q cannot name a key segment", g.SourceID))
	}
	body, err := Body(jobs, g.Index)
	if err != nil {
		return delivery.Permanent(err)
	}
	key := Key(set.Prefix, g, ObjectID(jobs, g.Index))
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err = client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(set.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(ContentType),
	})
	if err != nil {
		return classify(fmt.Errorf("s3sink: put s3://%s/%s: %w", set.Bucket, key, err))
	}
	return nil
}

// permanentCodes are S3 error codes that retrying cannot mend: the destination's settings or
// the bucket's permissions are wrong, and only the user can fix them.
var permanentCodes = map[string]bool{
	"NoSuchBucket":          true,
	"AccessDenied":          true,
	"InvalidAccessKeyId":    true,
	"SignatureDoesNotMatch": true,
	// The bucket is in another region than the setting says.
	"PermanentRedirect":            true,
	"AuthorizationHeaderMalformed": true,
	"InvalidBucketName":            true,
}

// classify marks err permanent when S3 refused for good, or when the endpoint's address is
// forbidden; throttling, 5xx, timeouts and network errors stay retryable.
func classify(err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && permanentCodes[apiErr.ErrorCode()] {
		return delivery.Permanent(err)
	}
	var re *egress.RefusedError
	if errors.As(err, &re) {
		return delivery.Permanent(fmt.Errorf("%w"+refusedWhy, err))
	}
	return err
}

// GroupOf is one object's worth of a batch: the jobs (indexes into the batch, in order) of
// one source accepted within one UTC hour.
type GroupOf struct {
	SourceID string
	Hour     time.Time // UTC, truncated to the hour
	Index    []int
}

// Group splits jobs by source and UTC hour of AcceptedAt, in the order each group first
// appears.
func Group(jobs []delivery.Job) []GroupOf {
	type k struct {
		src  string
		hour time.Time
	}
	var out []GroupOf
	at := map[k]int{}
	for i, j := range jobs {
		key := k{j.SourceID, j.AcceptedAt.UTC().Truncate(time.Hour)}
		n, ok := at[key]
		if !ok {
			n = len(out)
			at[key] = n
			out = append(out, GroupOf{SourceID: key.src, Hour: key.hour})
		}
		out[n].Index = append(out[n].Index, i)
	}
	return out
}

// ObjectID is the deterministic name of a group's object: the hex of the first 16 bytes of
// SHA-256 over the message ids in order, each followed by a newline so that no two lists of
// ids hash alike by running together.
func ObjectID(jobs []delivery.Job, index []int) string {
	h := sha256.New()
	for _, i := range index {
		h.Write([]byte(jobs[i].MessageID))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Key is the object key of group g: prefix/source/yyyy/mm/dd/hh/id.jsonl.gz, the prefix's
// empty segments dropped, so that neither an empty prefix nor a prefix with a leading or
// trailing slash makes a key with a leading or double slash (S3 would keep it, and most tools
// would then show an empty-named folder).
func Key(prefix string, g GroupOf, id string) string {
	var parts []string
	for _, p := range strings.Split(prefix, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	h := g.Hour.UTC()
	parts = append(parts, g.SourceID, h.Format("2006"), h.Format("01"), h.Format("02"), h.Format("15"), id+".jsonl.gz")
	return strings.Join(parts, "/")
}

// Body is the gzip of the jobs' payloads as JSON lines. The gzip header carries no name and
// no time, so the same jobs always give the same bytes.
func Body(jobs []delivery.Job, index []int) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var line bytes.Buffer
	for _, i := range index {
		line.Reset()
		if err := json.Compact(&line, jobs[i].Payload); err != nil {
			return nil, fmt.Errorf("s3sink: message %q is not valid JSON: %w", jobs[i].MessageID, err)
		}
		line.WriteByte('\n')
		if _, err := zw.Write(line.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// clientKey names a cached client. The secret is kept only as a hash: a corrected secret
// under the same key id must give a new client, not the cached one that keeps failing.
type clientKey struct {
	endpoint, region, accessKeyID string
	secretHash                    [32]byte
}

// client returns the cached client for set, building it on first use.
func (s *Sender) client(ctx context.Context, set Settings) (*s3.Client, error) {
	k := clientKey{endpoint: set.Endpoint, region: set.Region, accessKeyID: set.AccessKeyID,
		secretHash: sha256.Sum256([]byte(set.SecretAccessKey))}
	s.mu.Lock()
	c, ok := s.clients[k]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := newClient(ctx, set)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.clients[k]; ok {
		return prev, nil // built meanwhile by another Send: keep one
	}
	if len(s.clients) >= maxClients {
		clear(s.clients)
	}
	s.clients[k] = c
	return c, nil
}

// newClient builds an S3 client from the standard AWS configuration (for the region and
// transport settings) with set's region and endpoint, signing with set's keys only: the
// default credential chain is never used (see the package comment), and settings without
// both keys are refused. The HTTP client stays the SDK's buildable one (so AWS_CA_BUNDLE
// still applies). With an endpoint setting, its dialer refuses what package egress forbids
// (link-local addresses), so the setting cannot aim signed requests at the cloud metadata
// service; loopback stays allowed for local S3-compatible servers.
func newClient(ctx context.Context, set Settings) (*s3.Client, error) {
	if set.AccessKeyID == "" || set.SecretAccessKey == "" {
		return nil, delivery.Permanent(errors.New(`s3sink: settings "access_key_id" and "secret_access_key" are both required; this service never writes with its own role`))
	}
	opts := []func(*config.LoadOptions) error{
		config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(set.AccessKeyID, set.SecretAccessKey, "")),
	}
	if set.Region != "" {
		opts = append(opts, config.WithRegion(set.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The environment's configuration is broken: not the destination's fault, and it may
		// be mended without touching the destination.
		return nil, fmt.Errorf("s3sink: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if set.Endpoint != "" {
			o.BaseEndpoint = aws.String(set.Endpoint)
			if bc, ok := o.HTTPClient.(*awshttp.BuildableClient); ok {
				o.HTTPClient = bc.WithDialerOptions(func(d *net.Dialer) { d.Control = egress.Control(false) })
			}
			// S3-compatible servers seldom speak the SDK's default trailing checksums
			// (aws-chunked bodies); the body is signed in full instead.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
		// An endpoint, from the settings or the environment (AWS_ENDPOINT_URL_S3), is
		// addressed path-style (http://host/bucket/key): such servers need it.
		if o.BaseEndpoint != nil && *o.BaseEndpoint != "" {
			o.UsePathStyle = true
		}
	}), nil
}
