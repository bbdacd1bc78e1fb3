package workspace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/storetest"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

// destinationItems returns the stored destination items of ws, raw.
func destinationItems(t *testing.T, st store.Store, ws string) []store.Item {
	t.Helper()
	items, err := st.Query(context.Background(), "WS#"+ws, store.Page{Prefix: "DEST#"})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// The keys an s3 destination must carry (AWS's documented example keys).
const (
	testKeyID     = "AKIAIOSFODNN7EXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
)

// withS3Keys returns settings with both access keys added, unless settings set them.
func withS3Keys(settings map[string]any) map[string]any {
	out := map[string]any{"access_key_id": testKeyID, "secret_access_key": testSecretKey}
	maps.Copy(out, settings)
	return out
}

// A destination's secret settings are stored sealed and never come back from the service:
// not from Create, Get or List. The other settings are kept as given.
func TestDestinationSecretsSealed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		category string
		settings map[string]any
		secrets  map[string]string // setting → value that must appear nowhere
		public   map[string]any    // what Settings must hold
	}{
		{"s3 keys", "storage",
			map[string]any{"bucket": "lake", "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"},
			map[string]string{"secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"},
			map[string]any{"bucket": "lake", "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE"}},
		{"webhook secret", "event_streams",
			map[string]any{"url": "https://hooks.example.com/in", "secret": "hmac-shared-secret-0451", "batch_size": 10.0},
			map[string]string{"secret": "hmac-shared-secret-0451"},
			map[string]any{"url": "https://hooks.example.com/in", "batch_size": 10.0}},
		{"webhook headers", "analytics",
			map[string]any{"url": "https://collect.example.com/v1", "headers": map[string]any{"Authorization": "Basic correct-horse-battery-staple", "X-Api-Key": "ak_live_7d1f0c9e"}},
			map[string]string{"Authorization": "correct-horse-battery-staple", "X-Api-Key": "ak_live_7d1f0c9e"},
			map[string]any{"url": "https://collect.example.com/v1"}},
	}
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		for _, tc := range tests {
			tn := workspacetest.New(t, f.svc, operatorToken)
			created, err := f.svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: tc.category, Settings: tc.settings})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got, err := f.svc.GetDestination(ctx, tn.Owner, tn.ID(), created.ID)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			listed, err := f.svc.ListDestinations(ctx, tn.Owner, tn.ID())
			if err != nil || len(listed) != 1 {
				t.Fatalf("%s: list %v, %v", tc.name, listed, err)
			}
			items := destinationItems(t, f.st, tn.ID())
			if len(items) != 1 {
				t.Fatalf("%s: %d stored items", tc.name, len(items))
			}
			for _, d := range []workspace.Destination{created, got, listed[0]} {
				if fmt.Sprint(d.Settings) != fmt.Sprint(tc.public) {
					t.Errorf("%s: settings %v, want %v", tc.name, d.Settings, tc.public)
				}
			}
			shown := fmt.Sprintf("%#v %#v %#v", created, got, listed)
			for key, secret := range tc.secrets {
				if strings.Contains(shown, secret) {
					t.Errorf("%s: %s is returned: %s", tc.name, key, shown)
				}
				if bytes.Contains(items[0].Data, []byte(secret)) {
					t.Errorf("%s: %s is stored in clear: %s", tc.name, key, items[0].Data)
				}
			}
		}
	})
}

// A destination stored before secrets were sealed (its password in clear in settings) does
// not return it either.
func TestDestinationLegacySecretNotReturned(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		d, err := f.svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "Old", Category: "storage", Settings: withS3Keys(map[string]any{"bucket": "bkt"})})
		if err != nil {
			t.Fatal(err)
		}
		it := destinationItems(t, f.st, tn.ID())[0]
		var raw map[string]any
		if err := json.Unmarshal(it.Data, &raw); err != nil {
			t.Fatal(err)
		}
		// As written before secrets were sealed: the secret in clear, nothing sealed.
		raw["settings"] = map[string]any{"bucket": "b", "access_key_id": testKeyID, "secret_access_key": "legacy-clear-secret-99"}
		delete(raw, "sealed_secrets")
		delete(raw, "secret_settings")
		it.Data, _ = json.Marshal(raw)
		if err := f.st.Transact(ctx, store.PutOp(it, store.MustExist)); err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.GetDestination(ctx, tn.Owner, tn.ID(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		listed, err := f.svc.ListDestinations(ctx, tn.Owner, tn.ID())
		if err != nil {
			t.Fatal(err)
		}
		if shown := fmt.Sprintf("%#v %#v", got, listed); strings.Contains(shown, "legacy-clear-secret-99") {
			t.Errorf("a legacy secret is returned: %s", shown)
		}
		if got.Settings["bucket"] != "b" || got.Settings["access_key_id"] != testKeyID || !slices.Equal(got.SecretsSet, []string{"secret_access_key"}) {
			t.Errorf("settings %v, secrets set %v", got.Settings, got.SecretsSet)
		}
	})
}

// Secret settings cannot be kept without a Sealer: refused, nothing written. So an s3
// destination, which always carries a secret access key, cannot be created there at all;
// one without its keys is refused for them first. Settings without secrets still work.
func TestDestinationSecretsWithoutSealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Backends(t)[0].Open(t)
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, svc, operatorToken)
	_, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "storage", Settings: map[string]any{"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "hunter2-hunter2"}})
	if e := wantCode(t, err, "secrets_not_configured"); e.Kind != errcode.Internal {
		t.Errorf("kind %v", e.Kind)
	}
	if items := destinationItems(t, st, tn.ID()); len(items) != 0 {
		t.Errorf("an item was written: %s", items[0].Data)
	}
	_, err = svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "storage", Settings: map[string]any{"bucket": "lake"}})
	if e := wantCode(t, err, "invalid_field"); e.Field != "settings.access_key_id" {
		t.Errorf("s3 without keys: field %q, want settings.access_key_id", e.Field)
	}
	if items := destinationItems(t, st, tn.ID()); len(items) != 0 {
		t.Errorf("an item was written: %s", items[0].Data)
	}
	if _, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "event_streams", Settings: map[string]any{"url": "https://hooks.example.com/in"}}); err != nil {
		t.Errorf("without secrets: %v", err)
	}
	if _, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "event_streams", Settings: map[string]any{"url": "https://hooks.example.com/in", "secret": nil}}); err != nil {
		t.Errorf("a null secret is nothing to seal: %v", err)
	}
}

// destinationFixture is a workspace with a second space and an extra source, and another
// workspace whose space and source a destination may not name.
type destinationFixture struct {
	flexFixture
	tn, other         workspacetest.Tenant
	space, src0, src1 string // the first space, the two auto-created sources
	space2, extra     string
}

func newDestinationFixture(t *testing.T, f flexFixture) destinationFixture {
	t.Helper()
	tn, other := workspacetest.New(t, f.svc, operatorToken), workspacetest.New(t, f.svc, operatorToken)
	sp, err := f.svc.CreateSpace(context.Background(), tn.Owner, tn.ID(), "Second")
	if err != nil {
		t.Fatal(err)
	}
	return destinationFixture{flexFixture: f, tn: tn, other: other, space: tn.SpaceID(), src0: tn.Sources[0].ID, src1: tn.Sources[1].ID,
		space2: sp.ID, extra: tn.Source(t, "http").ID}
}

// Every rule of a destination's type, settings and sources: what is refused names its field,
// what is accepted is created (and deleted again, to free the slot).
func TestDestinationValidation(t *testing.T) {
	t.Parallel()
	type obj = map[string]any
	headers := func(n int) obj {
		h := obj{}
		for i := range n {
			h[fmt.Sprintf("X-H%d", i)] = "v"
		}
		return h
	}
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		fx := newDestinationFixture(t, f)
		hook := func(settings obj) obj {
			out := obj{"url": "https://hooks.example.com/in"}
			maps.Copy(out, settings)
			return out
		}
		s3 := withS3Keys // an s3 destination's settings, with its keys
		tests := []struct {
			name      string
			category  string
			typ       string
			settings  obj
			sourceIDs []string
			field     string // "" when valid
			message   string // in the error's message
		}{
			// Types.
			{"storage default type", "storage", "", s3(obj{"bucket": "lake"}), nil, "", ""},
			{"storage s3", "storage", "s3", s3(obj{"bucket": "lake"}), nil, "", ""},
			{"storage webhook", "storage", "webhook", s3(obj{"bucket": "lake"}), nil, "type", `use "s3"`},
			{"analytics s3", "analytics", "s3", s3(obj{"bucket": "lake"}), nil, "type", `use "webhook"`},
			{"event_streams webhook", "event_streams", "webhook", hook(nil), nil, "", ""},
			{"segment_profiles webhook", "segment_profiles", "webhook", hook(nil), nil, "type", `use "segment_profiles"`},
			{"segment_connections s3", "segment_connections", "s3", s3(obj{"bucket": "lake"}), nil, "type", `use "segment_connections"`},
			{"unknown type", "analytics", "kafka", hook(nil), nil, "type", "webhook"},
			{"unknown category", "fax", "", nil, nil, "category", "storage"},

			// s3.
			{"bucket missing", "storage", "", s3(obj{"prefix": "x/"}), nil, "settings.bucket", "required"},
			{"bucket empty", "storage", "", s3(obj{"bucket": ""}), nil, "settings.bucket", "required"},
			{"bucket null", "storage", "", s3(obj{"bucket": nil}), nil, "settings.bucket", "required"},
			{"bucket number", "storage", "", s3(obj{"bucket": 5.0}), nil, "settings.bucket", "string"},
			{"bucket 2 chars", "storage", "", s3(obj{"bucket": "ab"}), nil, "settings.bucket", "3 to 63"},
			{"bucket 3 chars", "storage", "", s3(obj{"bucket": "abc"}), nil, "", ""},
			{"bucket 63 chars", "storage", "", s3(obj{"bucket": strings.Repeat("a", 63)}), nil, "", ""},
			{"bucket 64 chars", "storage", "", s3(obj{"bucket": strings.Repeat("a", 64)}), nil, "settings.bucket", "3 to 63"},
			{"bucket dots and dashes", "storage", "", s3(obj{"bucket": "my.lake-01"}), nil, "", ""},
			{"bucket uppercase", "storage", "", s3(obj{"bucket": "My-Lake"}), nil, "settings.bucket", "lowercase"},
			{"bucket underscore", "storage", "", s3(obj{"bucket": "my_lake"}), nil, "settings.bucket", "lowercase"},
			{"bucket leading dash", "storage", "", s3(obj{"bucket": "-lake"}), nil, "settings.bucket", "starting and ending"},
			{"bucket trailing dot", "storage", "", s3(obj{"bucket": "lake."}), nil, "settings.bucket", "starting and ending"},
			{"bucket two dots", "storage", "", s3(obj{"bucket": "la..ke"}), nil, "settings.bucket", "two periods"},
			{"bucket as IP", "storage", "", s3(obj{"bucket": "192.168.5.4"}), nil, "settings.bucket", "IP address"},
			{"prefix", "storage", "", s3(obj{"bucket": "lake", "prefix": "events/up/"}), nil, "", ""},
			{"prefix 512", "storage", "", s3(obj{"bucket": "lake", "prefix": strings.Repeat("p", 512)}), nil, "", ""},
			{"prefix 513", "storage", "", s3(obj{"bucket": "lake", "prefix": strings.Repeat("p", 513)}), nil, "settings.prefix", "512"},
			{"prefix leading slash", "storage", "", s3(obj{"bucket": "lake", "prefix": "/events"}), nil, "settings.prefix", "'/'"},
			{"prefix number", "storage", "", s3(obj{"bucket": "lake", "prefix": 1.0}), nil, "settings.prefix", "string"},
			{"region", "storage", "", s3(obj{"bucket": "lake", "region": "eu-west-1"}), nil, "", ""},
			{"region gov", "storage", "", s3(obj{"bucket": "lake", "region": "us-gov-west-1"}), nil, "", ""},
			{"region words", "storage", "", s3(obj{"bucket": "lake", "region": "Europe"}), nil, "settings.region", "us-east-1"},
			{"region underscores", "storage", "", s3(obj{"bucket": "lake", "region": "us_east_1"}), nil, "settings.region", "us-east-1"},
			{"endpoint", "storage", "", s3(obj{"bucket": "lake", "endpoint": "http://localhost:9000"}), nil, "", ""},
			{"endpoint https", "storage", "", s3(obj{"bucket": "lake", "endpoint": "https://s3.eu-west-1.amazonaws.com"}), nil, "", ""},
			{"endpoint no scheme", "storage", "", s3(obj{"bucket": "lake", "endpoint": "minio:9000"}), nil, "settings.endpoint", "absolute"},
			{"endpoint ftp", "storage", "", s3(obj{"bucket": "lake", "endpoint": "ftp://files.example.com"}), nil, "settings.endpoint", "absolute"},
			{"endpoint metadata", "storage", "", s3(obj{"bucket": "lake", "endpoint": "http://169.254.169.254"}), nil, "settings.endpoint", "link-local"},
			// The keys: always both, never the deployment's own role.
			{"keys both", "storage", "", obj{"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "k"}, nil, "", ""},
			{"keys missing", "storage", "", obj{"bucket": "lake"}, nil, "settings.access_key_id", "is required: give the access key of an IAM user (or role keys) allowed s3:PutObject on the bucket; this service never writes with its own role"},
			{"keys missing with an endpoint", "storage", "", obj{"bucket": "lake", "endpoint": "http://localhost:9000"}, nil, "settings.access_key_id", "is required"},
			{"keys null", "storage", "", obj{"bucket": "lake", "access_key_id": nil, "secret_access_key": nil}, nil, "settings.access_key_id", "is required"},
			{"keys empty", "storage", "", obj{"bucket": "lake", "access_key_id": "", "secret_access_key": ""}, nil, "settings.access_key_id", "is required"},
			{"key id alone", "storage", "", obj{"bucket": "lake", "access_key_id": "AKIAEXAMPLE"}, nil, "settings.secret_access_key", "is required"},
			{"key id with a null secret", "storage", "", obj{"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": nil}, nil, "settings.secret_access_key", "never writes with its own role"},
			{"secret key alone", "storage", "", obj{"bucket": "lake", "secret_access_key": "k"}, nil, "settings.access_key_id", "is required"},
			{"secret key with an empty key id", "storage", "", obj{"bucket": "lake", "access_key_id": "", "secret_access_key": "k"}, nil, "settings.access_key_id", "s3:PutObject"},
			{"key id number", "storage", "", s3(obj{"bucket": "lake", "access_key_id": 5.0}), nil, "settings.access_key_id", "string"},
			{"secret key number", "storage", "", s3(obj{"bucket": "lake", "secret_access_key": 5.0}), nil, "settings.secret_access_key", "string"},
			{"s3 unknown key", "storage", "", s3(obj{"bucket": "lake", "url": "https://x.example.com"}), nil, "settings.url", "bucket, prefix, region, endpoint, access_key_id, secret_access_key"},
			{"s3 headers", "storage", "", s3(obj{"bucket": "lake", "headers": obj{"A": "b"}}), nil, "settings.headers", "bucket, prefix"},
			{"s3 nested", "storage", "", s3(obj{"bucket": "lake", "a": obj{}}), nil, "settings.a", "bucket"},
			{"s3 null optional", "storage", "", s3(obj{"bucket": "lake", "prefix": nil, "region": ""}), nil, "", ""},

			// webhook.
			{"url missing", "analytics", "", obj{"secret": "s"}, nil, "settings.url", "required"},
			{"url host only", "analytics", "", obj{"url": "hooks.example.com/in"}, nil, "settings.url", "absolute"},
			{"url ftp", "analytics", "", obj{"url": "ftp://hooks.example.com"}, nil, "settings.url", "absolute"},
			{"url no host", "analytics", "", obj{"url": "https://"}, nil, "settings.url", "absolute"},
			{"url number", "analytics", "", obj{"url": 7.0}, nil, "settings.url", "string"},
			{"url too long", "analytics", "", obj{"url": "https://h.example.com/" + strings.Repeat("p", 2030)}, nil, "settings.url", "limit"},
			{"url http localhost", "analytics", "", obj{"url": "http://localhost:8080/hook"}, nil, "", ""},
			{"url private ip", "event_streams", "", obj{"url": "https://10.0.0.5/x?a=1"}, nil, "", ""},
			{"url ipv6", "event_streams", "", obj{"url": "https://[2001:db8::1]:8443/x"}, nil, "", ""},
			{"url credentials", "analytics", "", obj{"url": "https://user:pw@hooks.example.com"}, nil, "settings.url", "headers"},
			{"url metadata ipv4", "analytics", "", obj{"url": "http://169.254.169.254/latest/meta-data/"}, nil, "settings.url", "link-local"},
			{"url link-local ipv4", "analytics", "", obj{"url": "http://169.254.10.1:8080/"}, nil, "settings.url", "link-local"},
			{"url link-local ipv6", "analytics", "", obj{"url": "http://[fe80::1]/"}, nil, "settings.url", "link-local"},
			{"url link-local ipv6 zone", "analytics", "", obj{"url": "http://[fe80::1%25eth0]/"}, nil, "settings.url", "link-local"},
			{"url mapped ipv4", "analytics", "", obj{"url": "http://[::ffff:169.254.169.254]/"}, nil, "settings.url", "link-local"},
			{"url aws ipv6 metadata", "analytics", "", obj{"url": "http://[fd00:ec2::254]/"}, nil, "settings.url", "link-local"},
			{"url gcp metadata", "analytics", "", obj{"url": "http://metadata.google.internal/computeMetadata/v1/"}, nil, "settings.url", "metadata"},
			{"url gcp metadata dot", "analytics", "", obj{"url": "http://METADATA.Google.Internal./"}, nil, "settings.url", "metadata"},
			{"url hex ip", "analytics", "", obj{"url": "http://0xA9FEA9FE/"}, nil, "settings.url", "non-standard"},
			{"url decimal ip", "analytics", "", obj{"url": "http://2852039166/"}, nil, "settings.url", "non-standard"},
			{"url short ip", "analytics", "", obj{"url": "http://169.254.43518/"}, nil, "settings.url", "non-standard"},
			{"secret", "analytics", "", hook(obj{"secret": "hmac-key"}), nil, "", ""},
			{"secret number", "analytics", "", hook(obj{"secret": 42.0}), nil, "settings.secret", "string"},
			{"batch 1", "analytics", "", hook(obj{"batch_size": 1.0}), nil, "", ""},
			{"batch 100", "analytics", "", hook(obj{"batch_size": 100.0}), nil, "", ""},
			{"batch 0", "analytics", "", hook(obj{"batch_size": 0.0}), nil, "settings.batch_size", "1 to 100"},
			{"batch 101", "analytics", "", hook(obj{"batch_size": 101.0}), nil, "settings.batch_size", "1 to 100"},
			{"batch fraction", "analytics", "", hook(obj{"batch_size": 2.5}), nil, "settings.batch_size", "whole"},
			{"batch string", "analytics", "", hook(obj{"batch_size": "10"}), nil, "settings.batch_size", "whole"},
			{"headers", "analytics", "", hook(obj{"headers": obj{"Authorization": "Bearer t", "X-Tab": "a\tb", "x-empty": ""}}), nil, "", ""},
			{"headers 20", "analytics", "", hook(obj{"headers": headers(20)}), nil, "", ""},
			{"headers 21", "analytics", "", hook(obj{"headers": headers(21)}), nil, "settings.headers", "limit is 20"},
			{"headers empty", "analytics", "", hook(obj{"headers": obj{}}), nil, "", ""},
			{"headers string", "analytics", "", hook(obj{"headers": "Authorization: x"}), nil, "settings.headers", "object"},
			{"header name space", "analytics", "", hook(obj{"headers": obj{"Bad Header": "v"}}), nil, "settings.headers.Bad Header", "header name"},
			{"header name colon", "analytics", "", hook(obj{"headers": obj{"X-A:": "v"}}), nil, "settings.headers.X-A:", "header name"},
			{"header content-type", "analytics", "", hook(obj{"headers": obj{"content-type": "text/plain"}}), nil, "settings.headers.content-type", "set by delivery"},
			{"header content-length", "analytics", "", hook(obj{"headers": obj{"Content-Length": "1"}}), nil, "settings.headers.Content-Length", "set by delivery"},
			{"header host", "analytics", "", hook(obj{"headers": obj{"HOST": "evil.example.com"}}), nil, "settings.headers.HOST", "set by delivery"},
			{"header signature", "analytics", "", hook(obj{"headers": obj{"x-signature": "00"}}), nil, "settings.headers.x-signature", "set by delivery"},
			{"header twice", "analytics", "", hook(obj{"headers": obj{"X-A": "1", "x-a": "2"}}), nil, "settings.headers.x-a", "twice"},
			{"header number", "analytics", "", hook(obj{"headers": obj{"X-N": 1.0}}), nil, "settings.headers.X-N", "string"},
			{"header crlf", "analytics", "", hook(obj{"headers": obj{"X-A": "v\r\nX-Evil: 1"}}), nil, "settings.headers.X-A", "control"},
			{"header too long", "analytics", "", hook(obj{"headers": obj{"X-A": strings.Repeat("v", 2001)}}), nil, "settings.headers.X-A", "limit"},
			{"webhook unknown key", "event_streams", "", hook(obj{"password": "pw"}), nil, "settings.password", "url, secret, headers, batch_size"},

			// segment_profiles.
			{"space", "segment_profiles", "", obj{"space_id": fx.space2}, nil, "", ""},
			{"space missing", "segment_profiles", "", nil, nil, "settings.space_id", "required"},
			{"space unknown", "segment_profiles", "", obj{"space_id": "sp_nope"}, nil, "settings.space_id", "sp_nope is not a space of this workspace"},
			{"space of another workspace", "segment_profiles", "", obj{"space_id": fx.other.SpaceID()}, nil, "settings.space_id", "not a space of this workspace"},
			{"space number", "segment_profiles", "", obj{"space_id": 1.0}, nil, "settings.space_id", "string"},
			{"space unknown key", "segment_profiles", "", obj{"space_id": fx.space, "source_id": fx.src0}, nil, "settings.source_id", "space_id"},

			// segment_connections.
			{"forward", "segment_connections", "", obj{"source_id": fx.extra}, []string{fx.src0, fx.src1}, "", ""},
			{"forward source missing", "segment_connections", "", nil, []string{fx.src0}, "settings.source_id", "required"},
			{"forward source unknown", "segment_connections", "", obj{"source_id": "src_nope"}, []string{fx.src0}, "settings.source_id", "src_nope is not a source"},
			{"forward source of another workspace", "segment_connections", "", obj{"source_id": fx.other.Sources[0].ID}, []string{fx.src0}, "settings.source_id", "not a source of this workspace"},
			{"forward from every source", "segment_connections", "", obj{"source_id": fx.extra}, nil, "source_ids", "must list the sources"},
			{"forward into itself", "segment_connections", "", obj{"source_id": fx.extra}, []string{fx.src0, fx.extra}, "source_ids", "loop"},

			// source_ids.
			{"sources", "storage", "", s3(obj{"bucket": "lake"}), []string{fx.src0, fx.extra}, "", ""},
			{"sources unknown", "storage", "", s3(obj{"bucket": "lake"}), []string{fx.src0, "src_nope"}, "source_ids", "src_nope is not a source"},
			{"sources of another workspace", "storage", "", s3(obj{"bucket": "lake"}), []string{fx.other.Sources[0].ID}, "source_ids", "not a source of this workspace"},
			{"sources twice", "storage", "", s3(obj{"bucket": "lake"}), []string{fx.src0, fx.src0}, "source_ids", "twice"},
			{"sources empty id", "storage", "", s3(obj{"bucket": "lake"}), []string{""}, "source_ids", "empty"},
			{"sources 51", "storage", "", s3(obj{"bucket": "lake"}), func() []string {
				ids := make([]string, 51)
				for i := range ids {
					ids[i] = fmt.Sprintf("src_%d", i)
				}
				return ids
			}(), "source_ids", "limit is 50"},
		}
		for _, tc := range tests {
			d, err := f.svc.CreateDestination(ctx, fx.tn.Owner, fx.tn.ID(), workspace.NewDestination{
				Name: "D", Category: tc.category, Type: tc.typ, Settings: tc.settings, SourceIDs: tc.sourceIDs})
			if tc.field == "" {
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
					continue
				}
				if d.Type != workspace.DestinationType(tc.category) || !d.Enabled || !slices.Equal(d.SourceIDs, tc.sourceIDs) {
					t.Errorf("%s: created %+v", tc.name, d)
				}
				if err := f.svc.DeleteDestination(ctx, fx.tn.Owner, fx.tn.ID(), d.ID); err != nil {
					t.Fatal(err)
				}
				continue
			}
			e := errcode.As(err)
			if e == nil || e.Code != "invalid_field" || e.Kind != errcode.Invalid || e.Field != tc.field || !strings.Contains(e.Message, tc.message) {
				t.Errorf("%s: got %v, want invalid_field %s saying %q", tc.name, err, tc.field, tc.message)
			}
		}
		if items := destinationItems(t, f.st, fx.tn.ID()); len(items) != 0 {
			t.Errorf("%d destinations left", len(items))
		}
		v, err := f.svc.GetWorkspace(ctx, fx.tn.Owner, fx.tn.ID())
		if err != nil || v.Usage[workspace.ResourceDestinations].Used != 0 {
			t.Errorf("usage %v, %v", v.Usage, err)
		}
	})
}

// Settings given as null or "" are not kept; a destination may be created paused; its type
// and sources are stored; a header value never shows in an error.
func TestDestinationCreateFields(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		fx := newDestinationFixture(t, f)
		paused := false
		d, err := f.svc.CreateDestination(ctx, fx.tn.Owner, fx.tn.ID(), workspace.NewDestination{Name: "Lake", Category: "storage",
			Settings: withS3Keys(map[string]any{"bucket": "lake", "prefix": "", "region": nil, "endpoint": "http://localhost:9000"}), SourceIDs: []string{fx.extra}, Enabled: &paused})
		if err != nil {
			t.Fatal(err)
		}
		want := workspace.Destination{ID: d.ID, WorkspaceID: fx.tn.ID(), Name: "Lake", Category: "storage", Type: workspace.DestinationTypeS3,
			Settings: map[string]any{"bucket": "lake", "endpoint": "http://localhost:9000", "access_key_id": testKeyID}, SecretsSet: []string{"secret_access_key"},
			SourceIDs: []string{fx.extra}, Enabled: false, CreatedAt: d.CreatedAt}
		if !reflect.DeepEqual(d, want) {
			t.Errorf("created\n%+v, want\n%+v", d, want)
		}
		for _, got := range []func() (workspace.Destination, error){
			func() (workspace.Destination, error) { return f.svc.GetDestination(ctx, fx.tn.Owner, fx.tn.ID(), d.ID) },
			func() (workspace.Destination, error) { return f.svc.Destination(ctx, fx.tn.ID(), d.ID) },
		} {
			if g, err := got(); err != nil || !reflect.DeepEqual(g, want) {
				t.Errorf("read back %+v, %v", g, err)
			}
		}
		var raw map[string]any
		if err := json.Unmarshal(destinationItems(t, f.st, fx.tn.ID())[0].Data, &raw); err != nil {
			t.Fatal(err)
		}
		if raw["type"] != "s3" || raw["enabled"] != false {
			t.Errorf("stored %v", raw)
		}

		_, err = f.svc.CreateDestination(ctx, fx.tn.Owner, fx.tn.ID(), workspace.NewDestination{Name: "Hook", Category: "analytics",
			Settings: map[string]any{"url": "https://h.example.com", "headers": map[string]any{"Authorization": "Bearer tok-in-error-77\n"}}})
		if e := wantCode(t, err, "invalid_field"); strings.Contains(e.Message, "tok-in-error-77") || strings.Contains(e.Field, "tok-in-error-77") {
			t.Errorf("a header value is quoted back: %+v", e)
		}
	})
}

// An item stored before destinations had a type and could be paused reads with its
// category's type, enabled; the next update stores both.
func TestDestinationOldItemDefaults(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		created := time.Date(2025, 11, 3, 9, 0, 0, 0, time.UTC)
		olds := map[string]string{ // id → item, as an older version wrote it
			"dst_oldlake": `{"id":"dst_oldlake","workspace_id":"%s","name":"Lake","category":"storage","settings":{"bucket":"lake"},"created_at":"2025-11-03T09:00:00Z"}`,
			"dst_oldhook": `{"id":"dst_oldhook","workspace_id":"%s","name":"Hook","category":"event_streams","settings":{"url":"https://h.example.com"},"created_at":"2025-11-03T09:00:00Z"}`,
			"dst_oldfwd":  `{"id":"dst_oldfwd","workspace_id":"%s","name":"Fwd","category":"segment_connections","created_at":"2025-11-03T09:00:00Z"}`,
		}
		for id, data := range olds {
			// Version 1, as the create of that version stamped it.
			it := store.Item{Key: store.Key{PK: "WS#" + tn.ID(), SK: "DEST#" + id}, Data: []byte(fmt.Sprintf(data, tn.ID())), Version: 1}
			if err := f.st.Transact(ctx, store.PutOp(it, store.Always)); err != nil {
				t.Fatal(err)
			}
		}
		wantType := map[string]string{"dst_oldlake": "s3", "dst_oldhook": "webhook", "dst_oldfwd": "segment_connections"}
		check := func(d workspace.Destination) {
			t.Helper()
			if d.Type != wantType[d.ID] || !d.Enabled || d.SourceIDs != nil || !d.CreatedAt.Equal(created) {
				t.Errorf("old item reads as %+v", d)
			}
		}
		listed, err := f.svc.ListDestinations(ctx, tn.Owner, tn.ID())
		if err != nil || len(listed) != 3 {
			t.Fatalf("list %v, %v", listed, err)
		}
		trusted, err := f.svc.DestinationsOf(ctx, tn.ID())
		if err != nil || !reflect.DeepEqual(trusted, listed) {
			t.Fatalf("DestinationsOf %v, %v; the list %v", trusted, err, listed)
		}
		for _, d := range listed {
			check(d)
			got, err := f.svc.GetDestination(ctx, tn.Owner, tn.ID(), d.ID)
			if err != nil {
				t.Fatal(err)
			}
			check(got)
		}
		if s, err := f.svc.DestinationSettings(ctx, tn.ID(), "dst_oldlake"); err != nil || s["bucket"] != "lake" {
			t.Errorf("settings %v, %v", s, err)
		}
		// Renamed, it is stored with its type and enabled, still enabled.
		name := "Lake 2"
		d, err := f.svc.UpdateDestination(ctx, tn.Owner, tn.ID(), "dst_oldlake", workspace.DestinationChange{Name: &name})
		if err != nil || d.Name != name || d.Type != "s3" || !d.Enabled {
			t.Fatalf("update %+v, %v", d, err)
		}
		it, err := f.st.Get(ctx, store.Key{PK: "WS#" + tn.ID(), SK: "DEST#dst_oldlake"})
		if err != nil {
			t.Fatal(err)
		}
		var raw map[string]any
		if err := json.Unmarshal(it.Data, &raw); err != nil || raw["type"] != "s3" || raw["enabled"] != true {
			t.Errorf("stored after the update: %s (%v)", it.Data, err)
		}
	})
}

// PATCH: rename, pause and resume, change the sources (checked as on create); nothing else
// of another workspace's, and nothing of an unknown destination.
func TestUpdateDestination(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		fx := newDestinationFixture(t, f)
		ws, owner := fx.tn.ID(), fx.tn.Owner
		d, err := f.svc.CreateDestination(ctx, owner, ws, workspace.NewDestination{Name: "Hook", Category: "event_streams",
			Settings: map[string]any{"url": "https://h.example.com", "secret": "hmac-key-0099", "batch_size": 10.0}})
		if err != nil {
			t.Fatal(err)
		}
		update := func(ch workspace.DestinationChange) (workspace.Destination, error) {
			return f.svc.UpdateDestination(ctx, owner, ws, d.ID, ch)
		}
		ptr := func(b bool) *bool { return &b }
		ids := func(v ...string) *[]string { return &v }

		got, err := update(workspace.DestinationChange{Enabled: ptr(false)})
		if err != nil || got.Enabled {
			t.Fatalf("pause: %+v, %v", got, err)
		}
		if g, _ := f.svc.GetDestination(ctx, owner, ws, d.ID); g.Enabled {
			t.Errorf("still enabled after the pause")
		}
		name := "Hook (paused)"
		got, err = update(workspace.DestinationChange{Name: &name})
		if err != nil || got.Name != name || got.Enabled {
			t.Fatalf("rename: %+v, %v", got, err)
		}
		got, err = update(workspace.DestinationChange{Enabled: ptr(true), SourceIDs: ids(fx.extra, fx.src0)})
		if err != nil || !got.Enabled || !slices.Equal(got.SourceIDs, []string{fx.extra, fx.src0}) {
			t.Fatalf("resume with sources: %+v, %v", got, err)
		}
		// Settings and secrets are untouched by any of it.
		if !reflect.DeepEqual(got.Settings, d.Settings) || !slices.Equal(got.SecretsSet, []string{"secret"}) || got.Type != "webhook" || !got.CreatedAt.Equal(d.CreatedAt) {
			t.Errorf("after updates %+v, created %+v", got, d)
		}
		if s, err := f.svc.DestinationSettings(ctx, ws, d.ID); err != nil || s["secret"] != "hmac-key-0099" {
			t.Errorf("secrets after updates: %v", err)
		}
		// An empty change changes nothing.
		if same, err := update(workspace.DestinationChange{}); err != nil || !reflect.DeepEqual(same, got) {
			t.Errorf("empty change: %+v, %v", same, err)
		}
		got, err = update(workspace.DestinationChange{SourceIDs: ids()})
		if err != nil || got.SourceIDs != nil {
			t.Fatalf("every source again: %+v, %v", got, err)
		}

		bad := []struct {
			name  string
			ch    workspace.DestinationChange
			field string
		}{
			{"empty name", workspace.DestinationChange{Name: new(string)}, "name"},
			{"unknown source", workspace.DestinationChange{SourceIDs: ids(fx.src0, "src_nope")}, "source_ids"},
			{"other workspace's source", workspace.DestinationChange{SourceIDs: ids(fx.other.Sources[0].ID)}, "source_ids"},
			{"duplicate source", workspace.DestinationChange{SourceIDs: ids(fx.src0, fx.src0)}, "source_ids"},
		}
		for _, tc := range bad {
			if _, err := update(tc.ch); errcode.As(err) == nil || errcode.As(err).Field != tc.field {
				t.Errorf("%s: %v, want invalid_field %s", tc.name, err, tc.field)
			}
		}
		if g, _ := f.svc.GetDestination(ctx, owner, ws, d.ID); g.SourceIDs != nil || g.Name != name {
			t.Errorf("a refused change was applied: %+v", g)
		}

		_, err = f.svc.UpdateDestination(ctx, fx.other.Owner, ws, d.ID, workspace.DestinationChange{Enabled: ptr(false)})
		wantCode(t, err, "forbidden")
		_, err = f.svc.UpdateDestination(ctx, fx.other.Owner, fx.other.ID(), d.ID, workspace.DestinationChange{Enabled: ptr(false)})
		wantCode(t, err, "not_found")
		_, err = update(workspace.DestinationChange{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.UpdateDestination(ctx, owner, ws, "dst_nope", workspace.DestinationChange{Enabled: ptr(false)})
		wantCode(t, err, "not_found")
		_, err = f.svc.UpdateDestination(ctx, owner, ws, strings.Repeat("d", 500), workspace.DestinationChange{Enabled: ptr(false)})
		wantCode(t, err, "not_found")

		// Forwarding: its sources stay listed and never include the source it forwards into.
		fwd, err := f.svc.CreateDestination(ctx, owner, ws, workspace.NewDestination{Name: "Fwd", Category: "segment_connections",
			Settings: map[string]any{"source_id": fx.extra}, SourceIDs: []string{fx.src0}})
		if err != nil {
			t.Fatal(err)
		}
		for _, change := range []*[]string{ids(), ids(fx.src0, fx.extra)} {
			if _, err := f.svc.UpdateDestination(ctx, owner, ws, fwd.ID, workspace.DestinationChange{SourceIDs: change}); errcode.As(err) == nil || errcode.As(err).Field != "source_ids" {
				t.Errorf("forward sources %v: %v", *change, err)
			}
		}
		if got, err := f.svc.UpdateDestination(ctx, owner, ws, fwd.ID, workspace.DestinationChange{SourceIDs: ids(fx.src1, fx.src0)}); err != nil || !slices.Equal(got.SourceIDs, []string{fx.src1, fx.src0}) {
			t.Errorf("forward sources: %+v, %v", got, err)
		}
	})
}

// Concurrent updates of different fields: each is applied, none overwrites another's.
func TestUpdateDestinationConcurrent(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		fx := newDestinationFixture(t, f)
		ws, owner := fx.tn.ID(), fx.tn.Owner
		d, err := f.svc.CreateDestination(ctx, owner, ws, workspace.NewDestination{Name: "Lake", Category: "storage", Settings: withS3Keys(map[string]any{"bucket": "lake"})})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			name := fmt.Sprintf("Lake %d", round)
			enabled := round%2 == 1
			sources := []string{fx.src0, fx.src1, fx.extra}[:round%3+1]
			changes := []workspace.DestinationChange{{Name: &name}, {Enabled: &enabled}, {SourceIDs: &sources}}
			var wg sync.WaitGroup
			errs := make([]error, len(changes))
			for i, ch := range changes {
				wg.Go(func() { _, errs[i] = f.svc.UpdateDestination(ctx, owner, ws, d.ID, ch) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d, change %d: %v", round, i, err)
				}
			}
			got, err := f.svc.GetDestination(ctx, owner, ws, d.ID)
			if err != nil || got.Name != name || got.Enabled != enabled || !slices.Equal(got.SourceIDs, sources) {
				t.Fatalf("round %d: %+v (%v); want %s, enabled %v, sources %v", round, got, err, name, enabled, sources)
			}
		}
	})
}

// The trusted lookups: every destination without secret values, one by id, not_found else.
func TestDestinationTrustedLookups(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		fx := newDestinationFixture(t, f)
		ws := fx.tn.ID()
		if ds, err := f.svc.DestinationsOf(ctx, ws); err != nil || len(ds) != 0 {
			t.Fatalf("no destinations yet: %v, %v", ds, err)
		}
		hook, err := f.svc.CreateDestination(ctx, fx.tn.Owner, ws, workspace.NewDestination{Name: "Hook", Category: "analytics",
			Settings: map[string]any{"url": "https://h.example.com", "headers": map[string]any{"Authorization": "Bearer lookup-secret-31"}}})
		if err != nil {
			t.Fatal(err)
		}
		prof, err := f.svc.CreateDestination(ctx, fx.tn.Owner, ws, workspace.NewDestination{Name: "Profiles", Category: "segment_profiles",
			Settings: map[string]any{"space_id": fx.space2}, SourceIDs: []string{fx.src1}})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := f.svc.DestinationsOf(ctx, ws)
		if err != nil || len(ds) != 2 {
			t.Fatalf("DestinationsOf: %v, %v", ds, err)
		}
		if strings.Contains(fmt.Sprintf("%#v", ds), "lookup-secret-31") {
			t.Errorf("a secret is returned: %#v", ds)
		}
		byID := map[string]workspace.Destination{ds[0].ID: ds[0], ds[1].ID: ds[1]}
		if !reflect.DeepEqual(byID[hook.ID], hook) || !reflect.DeepEqual(byID[prof.ID], prof) {
			t.Errorf("DestinationsOf %+v; created %+v and %+v", ds, hook, prof)
		}
		if got, err := f.svc.Destination(ctx, ws, prof.ID); err != nil || !reflect.DeepEqual(got, prof) {
			t.Errorf("Destination: %+v, %v", got, err)
		}
		_, err = f.svc.Destination(ctx, ws, "dst_nope")
		wantCode(t, err, "not_found")
		_, err = f.svc.Destination(ctx, fx.other.ID(), prof.ID)
		wantCode(t, err, "not_found")
		if ds, err := f.svc.DestinationsOf(ctx, fx.other.ID()); err != nil || len(ds) != 0 {
			t.Errorf("another workspace's: %v, %v", ds, err)
		}
	})
}
