package httpapi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/testlog"
)

// newSealedServer is newServer with a local-key Sealer (as the local stack has) and every
// log line, at debug level, kept in logs.
func newSealedServer(t *testing.T) (*client, *testlog.Buffer, *bolt.Store) {
	t.Helper()
	s := newFlexStack(t, "")
	return s.client, s.logs, s.st
}

// Destination secrets (an S3 secret access key, a webhook's signing secret, a password) are
// answered as "set" by POST, GET and the list, stored sealed, and in no log line — also when
// the request fails.
func TestDestinationSecretsNeverShown(t *testing.T) {
	t.Parallel()
	c, logs, st := newSealedServer(t)
	tn := c.newTenant(51)
	base := "/v1/workspaces/" + tn.ws + "/destinations"
	tests := []struct {
		name     string
		body     map[string]any
		secrets  []string // values that must appear nowhere
		settings map[string]any
	}{
		{"s3", map[string]any{"name": "Lake", "category": "storage",
			"settings": map[string]any{"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"}},
			[]string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"},
			map[string]any{"bucket": "lake", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "set"}},
		{"webhook", map[string]any{"name": "Hook", "category": "event_streams",
			"settings": map[string]any{"url": "https://hooks.example.com/x", "secret": "hmac-shared-secret-0451", "headers": map[string]any{"Authorization": "Basic pw-for-basic-auth-77"}}},
			[]string{"hmac-shared-secret-0451", "pw-for-basic-auth-77"},
			map[string]any{"url": "https://hooks.example.com/x", "secret": "set", "headers": "set"}},
	}
	var answers [][]byte
	ids := map[string]string{}
	for _, tc := range tests {
		r := c.do("POST", base, tn.token, tc.body)
		if r.status != 201 {
			t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
		}
		got := r.json(t)
		if settings, _ := got["settings"].(map[string]any); fmt.Sprint(settings) != fmt.Sprint(tc.settings) {
			t.Errorf("%s: settings %v, want %v", tc.name, settings, tc.settings)
		}
		ids[tc.name] = got["id"].(string)
		answers = append(answers, r.body)
		g := c.do("GET", base+"/"+ids[tc.name], tn.token, nil)
		if settings, _ := g.json(t)["settings"].(map[string]any); fmt.Sprint(settings) != fmt.Sprint(tc.settings) {
			t.Errorf("%s: GET settings %v, want %v", tc.name, settings, tc.settings)
		}
		answers = append(answers, g.body)
	}
	answers = append(answers, c.do("GET", base, tn.token, nil).body)
	// Refused requests that carry a secret: a fourth destination, an unknown category, a bad
	// value, an unknown setting, a bad header, a secret access key without its key id.
	answers = append(answers, c.do("POST", base, tn.token, map[string]any{"name": "Fourth", "category": "storage", "settings": map[string]any{"bucket": "fourth", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "refused-secret-0001"}}).body)
	answers = append(answers, c.do("POST", base, tn.token, map[string]any{"name": "X", "category": "fax", "settings": map[string]any{"password": "refused-secret-0002"}}).body)
	answers = append(answers, c.do("POST", base, tn.token, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"secret_access_key": "refused-secret-0003", "bucket": []any{1}}}).body)
	answers = append(answers, c.do("POST", base, tn.token, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"bucket": "lake", "password": "refused-secret-0004"}}).body)
	answers = append(answers, c.do("POST", base, tn.token, map[string]any{"name": "X", "category": "analytics", "settings": map[string]any{"url": "https://h.example.com",
		"headers": map[string]any{"Authorization": "Bearer refused-secret-0005\r\nX-Evil: 1"}}}).body)
	noKeyID := c.do("POST", base, tn.token, map[string]any{"name": "X", "category": "storage", "settings": map[string]any{"bucket": "lake", "secret_access_key": "refused-secret-0006"}})
	if code, field := noKeyID.errorCode(t); noKeyID.status != 400 || code != "invalid_field" || field != "settings.access_key_id" {
		t.Errorf("a secret access key without its key id: %d %s", noKeyID.status, noKeyID.body)
	}
	answers = append(answers, noKeyID.body)

	// newTenant's own storage destination carries a secret access key too.
	_, tenantSecret := tenantS3Keys(51)
	secrets := []string{"refused-secret-0001", "refused-secret-0002", "refused-secret-0003", "refused-secret-0004", "refused-secret-0005", "refused-secret-0006", tenantSecret}
	for _, tc := range tests {
		secrets = append(secrets, tc.secrets...)
	}
	for i, b := range answers {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("answer %d holds %q: %s", i, s, b)
			}
		}
	}
	items, err := st.Query(t.Context(), "WS#"+tn.ws, store.Page{Prefix: "DEST#"})
	if err != nil || len(items) != 3 {
		t.Fatalf("stored destinations: %d, %v", len(items), err)
	}
	for _, it := range items {
		for _, s := range secrets {
			if bytes.Contains(it.Data, []byte(s)) {
				t.Errorf("item %s holds %q in clear", it.Key, s)
			}
		}
	}
	out := logs.String()
	if !strings.Contains(out, `"route":"POST /v1/workspaces/{ws}/destinations"`) {
		t.Fatalf("the requests were not logged (the check below would prove nothing):\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a log line holds %q", s)
		}
	}
}
