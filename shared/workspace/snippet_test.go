package workspace_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/browsersdk"
	"github.com/unifiedprofiles/up/shared/store/bolt"
	"github.com/unifiedprofiles/up/shared/token"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Each snippet points the stock SDK at this deployment and at nothing else: the website's
// loads the vendored bundle from here (never a CDN), the mobile SDKs get this host for both
// their API and their settings, Java the base its /v1/import/ is added to.
func TestSourceSnippets(t *testing.T) {
	t.Parallel()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "up.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := workspace.New(st, workspace.Options{OperatorTokenHash: token.Hash(operatorToken)})
	c, p := newWorkspace(t, svc, 1)
	ctx := context.Background()
	if _, err := svc.ChooseDataSource(ctx, p, c.Workspace.ID, "website"); err != nil {
		t.Fatal(err)
	}
	sources := map[string]workspace.Source{}
	for _, tc := range []struct {
		typ, base string
		want      []string
		not       []string
	}{
		{"javascript", "https://api.acme.example/", []string{
			`t.src="https://api.acme.example/v1/sdk/analytics-next.min.js"`, `analytics._cdn="https://api.acme.example"`,
			`analytics._writeKey="WK"`, `analytics.load("WK")`, `analytics.page()`, `SNIPPET_VERSION="5.2.1"`, browsersdk.Version,
		}, []string{"cdn.segment.com", "esm.sh", "unpkg", "jsdelivr"}},
		// A hostile Host header cannot break out of the script element.
		{"javascript", "http://x</script><script>alert(1)", []string{`\u003c/script\u003e`}, []string{"</script><script>"}},
		{"swift", "https://api.acme.example", []string{`.apiHost("api.acme.example/v1")`, `.cdnHost("api.acme.example/v1")`, `"WK"`}, []string{"only speak https"}},
		{"kotlin", "http://127.0.0.1:8080", []string{`apiHost = "127.0.0.1:8080/v1"`, `cdnHost = "127.0.0.1:8080/v1"`, "only speak https"}, nil},
		{"java", "https://api.acme.example/", []string{`.endpoint("https://api.acme.example")`, "/v1/import/"}, []string{`example/")`}},
	} {
		src, ok := sources[tc.typ]
		if !ok {
			src, err = svc.CreateSource(ctx, p, c.Workspace.ID, workspace.NewSource{Name: tc.typ, Type: tc.typ})
			if err != nil {
				t.Fatalf("create a %s source: %v", tc.typ, err)
			}
			sources[tc.typ] = src
		}
		sn, err := svc.SourceSnippet(ctx, p, c.Workspace.ID, src.ID, tc.base)
		if err != nil {
			t.Fatalf("%s snippet: %v", tc.typ, err)
		}
		code := strings.ReplaceAll(sn.Code, src.WriteKey, "WK")
		for _, w := range tc.want {
			if !strings.Contains(code, w) {
				t.Errorf("%s snippet for %s lacks %s:\n%s", tc.typ, tc.base, w, code)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(code, n) {
				t.Errorf("%s snippet for %s holds %s:\n%s", tc.typ, tc.base, n, code)
			}
		}
	}
}
