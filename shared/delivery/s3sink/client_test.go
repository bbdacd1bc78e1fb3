package s3sink

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/unifiedprofiles/up/shared/delivery"
	"github.com/unifiedprofiles/up/shared/egress"
)

func TestClientCache(t *testing.T) {
	t.Parallel()
	s := New(Options{})
	ctx := context.Background()
	base := Settings{Bucket: "b", Region: "eu-west-1", Endpoint: "http://127.0.0.1:1", AccessKeyID: "K", SecretAccessKey: "S"}
	c1, err := s.client(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	again := base
	again.Bucket, again.Prefix = "other-bucket", "p" // not part of the client
	c2, _ := s.client(ctx, again)
	if c1 != c2 {
		t.Error("same endpoint, region and credentials: a second client")
	}
	for name, change := range map[string]func(*Settings){
		"endpoint": func(x *Settings) { x.Endpoint = "http://127.0.0.1:2" },
		"region":   func(x *Settings) { x.Region = "us-west-2" },
		"key id":   func(x *Settings) { x.AccessKeyID = "K2" },
		"secret":   func(x *Settings) { x.SecretAccessKey = "S2" },
	} {
		other := base
		change(&other)
		c3, err := s.client(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		if c3 == c1 {
			t.Errorf("another %s: the same client", name)
		}
	}
	if got := c1.Options().Region; got != "eu-west-1" {
		t.Errorf("region %q", got)
	}
	if !c1.Options().UsePathStyle {
		t.Error("an endpoint without path-style addressing")
	}
	// The endpoint's dials go through the egress refusal (loopback allowed: local S3-compatible
	// servers), on the SDK's buildable client. Which addresses are refused is package
	// egress's test; this one checks the wiring.
	bc, ok := c1.Options().HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client %T, want the SDK's buildable client", c1.Options().HTTPClient)
	}
	if control := bc.GetDialer().Control; control == nil {
		t.Error("the endpoint's dialer has no egress refusal")
	} else {
		var re *egress.RefusedError
		if err := control("tcp", "169.254.169.254:80", nil); !errors.As(err, &re) {
			t.Errorf("the endpoint's dialer: 169.254.169.254: err = %v, want an *egress.RefusedError", err)
		}
		if err := control("tcp", "127.0.0.1:9000", nil); err != nil {
			t.Errorf("the endpoint's dialer refuses loopback: %v", err)
		}
	}
	if bc.GetTransport().TLSClientConfig == nil {
		t.Error("the transport lost its TLS configuration")
	}
}

// TestDefaultRegion: no region setting → the environment's region, else us-east-1. Not
// parallel: it sets the environment.
func TestDefaultRegion(t *testing.T) {
	nowhere := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", nowhere)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
	t.Setenv("AWS_DEFAULT_REGION", "")
	for _, tc := range []struct{ env, want string }{{"", DefaultRegion}, {"ap-south-1", "ap-south-1"}} {
		t.Setenv("AWS_REGION", tc.env)
		c, err := newClient(context.Background(), Settings{Bucket: "b", AccessKeyID: "K", SecretAccessKey: "S"})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Options().Region; got != tc.want {
			t.Errorf("AWS_REGION=%q: region %q, want %q", tc.env, got, tc.want)
		}
	}
}

// TestClientCredentials: the client signs with the settings' keys, whatever the environment
// holds, and is not built at all without both keys (no default credential chain). Not
// parallel: it sets the environment.
func TestClientCredentials(t *testing.T) {
	nowhere := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", nowhere)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", nowhere)
	t.Setenv("AWS_ACCESS_KEY_ID", "DEPLOYMENTKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "deployment-secret")
	t.Setenv("AWS_SESSION_TOKEN", "deployment-token")
	ctx := context.Background()

	c, err := newClient(ctx, Settings{Bucket: "b", AccessKeyID: "K", SecretAccessKey: "S"})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := c.Options().Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "K" || creds.SecretAccessKey != "S" || creds.SessionToken != "" {
		t.Errorf("credentials %q/%q (token %q), want the settings' K/S", creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	}

	s := New(Options{})
	for name, set := range map[string]Settings{
		"no keys":   {Bucket: "b"},
		"no secret": {Bucket: "b", AccessKeyID: "K"},
		"no key id": {Bucket: "b", SecretAccessKey: "S"},
	} {
		if c, err := newClient(ctx, set); err == nil || c != nil || !delivery.IsPermanent(err) {
			t.Errorf("newClient, %s: client %v, err = %v; want no client and a permanent error", name, c != nil, err)
		}
		if c, err := s.client(ctx, set); err == nil || c != nil {
			t.Errorf("client, %s: client %v, err = %v; want refused", name, c != nil, err)
		}
	}
	if len(s.clients) != 0 {
		t.Errorf("%d clients cached for settings without keys", len(s.clients))
	}
}

// TestClassifyRefused: a refused dial, deep in the SDK's error, is permanent and says why.
func TestClassifyRefused(t *testing.T) {
	t.Parallel()
	refused := &egress.RefusedError{Addr: netip.MustParseAddr("169.254.169.254")}
	err := classify(fmt.Errorf("s3sink: put s3://b/k: operation error S3: PutObject: dial tcp: %w", refused))
	var re *egress.RefusedError
	if !delivery.IsPermanent(err) || !errors.As(err, &re) || !strings.HasSuffix(err.Error(), "an S3 endpoint may not be there") {
		t.Errorf("classify = %v, want a permanent refusal", err)
	}
	if err := classify(errors.New("dial tcp: connection refused")); delivery.IsPermanent(err) {
		t.Errorf("classify = %v, want a retryable error", err)
	}
}
