package workspace_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

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
		{"password and api key", "analytics",
			map[string]any{"user": "loader", "password": "correct horse battery staple", "apiKey": "ak_live_7d1f0c9e", "Auth-Token": "tok-31337-secret"},
			map[string]string{"password": "correct horse battery staple", "apiKey": "ak_live_7d1f0c9e", "Auth-Token": "tok-31337-secret"},
			map[string]any{"user": "loader"}},
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
		d, err := f.svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "Old", Category: "storage", Settings: map[string]any{"bucket": "b"}})
		if err != nil {
			t.Fatal(err)
		}
		it := destinationItems(t, f.st, tn.ID())[0]
		var raw map[string]any
		if err := json.Unmarshal(it.Data, &raw); err != nil {
			t.Fatal(err)
		}
		raw["settings"] = map[string]any{"bucket": "b", "secret_access_key": "legacy-clear-secret-99"}
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
		if got.Settings["bucket"] != "b" {
			t.Errorf("settings %v", got.Settings)
		}
	})
}

// Secret settings cannot be kept without a Sealer: refused, nothing written. Settings without
// secrets still work there.
func TestDestinationSecretsWithoutSealer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.Backends(t)[0].Open(t)
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	tn := workspacetest.New(t, svc, operatorToken)
	_, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "storage", Settings: map[string]any{"bucket": "b", "password": "hunter2-hunter2"}})
	if e := wantCode(t, err, "secrets_not_configured"); e.Kind != errcode.Internal {
		t.Errorf("kind %v", e.Kind)
	}
	if items := destinationItems(t, st, tn.ID()); len(items) != 0 {
		t.Errorf("an item was written: %s", items[0].Data)
	}
	if _, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "storage", Settings: map[string]any{"bucket": "b"}}); err != nil {
		t.Errorf("without secrets: %v", err)
	}
	if _, err := svc.CreateDestination(ctx, tn.Owner, tn.ID(), workspace.NewDestination{Name: "D", Category: "storage", Settings: map[string]any{"bucket": "b", "password": nil}}); err != nil {
		t.Errorf("a null secret is nothing to seal: %v", err)
	}
}
