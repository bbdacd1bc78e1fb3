package workspace_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/secrets"
	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/workspace"
	"github.com/unifiedprofiles/up/shared/workspace/workspacetest"
)

func TestIsSecretSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"password", true}, {"db_password", true}, {"secret", true}, {"secret_access_key", true},
		{"client_secret", true}, {"api_key", true}, {"apiKey", true}, {"auth-token", true},
		{"private_key", true}, {"credentials_json", true}, {"Authorization", true}, {"passphrase", true},
		{"headers", true},
		{"bucket", false}, {"prefix", false}, {"region", false}, {"url", false}, {"access_key_id", false},
		{"batch_size", false}, {"space_id", false}, {"source_id", false}, {"endpoint", false},
	} {
		if got := workspace.IsSecretSetting(tc.key); got != tc.want {
			t.Errorf("IsSecretSetting(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

// The secrets are named in SecretsSet and opened, for delivery, only by DestinationSettings,
// for their own workspace.
func TestDestinationSettingsOpen(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		a, b := workspacetest.New(t, f.svc, operatorToken), workspacetest.New(t, f.svc, operatorToken)
		in := map[string]any{"url": "https://hooks.example.com/in", "secret": "s3cr3t-value-0001", "batch_size": nil,
			"headers": map[string]any{"Authorization": "Bearer pw-0002", "X-Tenant": "acme"}}
		d, err := f.svc.CreateDestination(ctx, a.Owner, a.ID(), workspace.NewDestination{Name: "D", Category: "event_streams", Settings: in})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.SecretsSet, []string{"headers", "secret"}) {
			t.Errorf("SecretsSet %v", d.SecretsSet)
		}
		got, err := f.svc.DestinationSettings(ctx, a.ID(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		// The headers come back as the object they were given (delivery sets each one).
		want := map[string]any{"url": "https://hooks.example.com/in", "secret": "s3cr3t-value-0001",
			"headers": map[string]any{"Authorization": "Bearer pw-0002", "X-Tenant": "acme"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("settings %v, want %v", got, want)
		}
		// Moved into B's partition, the sealed settings do not open there.
		it := destinationItems(t, f.st, a.ID())[0]
		it.Key = store.Key{PK: "WS#" + b.ID(), SK: it.SK}
		if err := f.st.Transact(ctx, store.PutOp(it, store.Always)); err != nil {
			t.Fatal(err)
		}
		if got, err := f.svc.DestinationSettings(ctx, b.ID(), d.ID); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("A's settings under B: %v, %v; want ErrOpen", got, err)
		}
		wantCode(t, func() error { _, err := f.svc.DestinationSettings(ctx, a.ID(), "dst_nope"); return err }(), "not_found")
	})
}

// An s3 destination's keys reach delivery together: the key id kept as a plain setting, the
// secret sealed (named in SecretsSet, never in Settings) and opened by DestinationSettings.
func TestDestinationSettingsOpenS3Keys(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		in := map[string]any{"bucket": "lake", "region": "eu-west-1", "access_key_id": testKeyID, "secret_access_key": testSecretKey}
		d, err := f.svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "Lake", Category: "storage", Settings: in})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.SecretsSet, []string{"secret_access_key"}) {
			t.Errorf("SecretsSet %v", d.SecretsSet)
		}
		if want := map[string]any{"bucket": "lake", "region": "eu-west-1", "access_key_id": testKeyID}; !reflect.DeepEqual(d.Settings, want) {
			t.Errorf("settings %v, want %v", d.Settings, want)
		}
		if raw := destinationItems(t, f.st, tn.ID())[0].Data; strings.Contains(string(raw), testSecretKey) {
			t.Errorf("the secret access key is stored in clear: %s", raw)
		}
		got, err := f.svc.DestinationSettings(ctx, tn.ID(), d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, in) {
			t.Errorf("settings for delivery %v, want %v", got, in)
		}
	})
}

// KMS encrypts at most 4 KiB directly: more secret bytes than that are refused up front,
// naming the settings but not their values.
func TestDestinationSecretsTooLarge(t *testing.T) {
	t.Parallel()
	forEachFlexBackend(t, func(t *testing.T, f flexFixture) {
		ctx := context.Background()
		tn := workspacetest.New(t, f.svc, operatorToken)
		big := strings.Repeat("k", 1500)
		_, err := f.svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "event_streams",
			Settings: map[string]any{"url": "https://hooks.example.com/in", "secret": big, "headers": map[string]any{"X-A": big, "X-B": big}}})
		e := wantCode(t, err, "invalid_field")
		if e.Field != "settings" || strings.Contains(e.Message, big) || !strings.Contains(e.Message, "headers, secret") {
			t.Errorf("error %+v", e)
		}
		if items := destinationItems(t, f.st, tn.ID()); len(items) != 0 {
			t.Errorf("an item was written")
		}
	})
}
