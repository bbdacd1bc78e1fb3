package upload_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/csvfile"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/profile"
	"github.com/unifiedprofiles/up/shared/upload"
)

// wideFile is a file of user_id plus n columns c1…cn: u1 fills one column, u2 fills them all.
func wideFile(n int, value string) string {
	var b strings.Builder
	b.WriteString("user_id")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ",c%d", i)
	}
	b.WriteString("\nu1," + value + strings.Repeat(",", n-1) + "\nu2")
	for range n {
		b.WriteString("," + value)
	}
	b.WriteString("\n")
	return b.String()
}

// customIdentifiers saves identity settings with user_id and n custom identifier keys k1…kn
// (ten per custom type), each taking up to 1,000 values.
func customIdentifiers(t *testing.T, e *env, n int) {
	t.Helper()
	set := identity.DefaultSettings()
	var rule *identity.Rule
	for i := 1; i <= n; i++ {
		if rule == nil || len(rule.Keys) == 10 {
			set.Identifiers = append(set.Identifiers, identity.Rule{Type: fmt.Sprintf("custom%d", i), Custom: true,
				Limit: 1000, Window: identity.WindowEver, Priority: 100 + i})
			rule = &set.Identifiers[len(set.Identifiers)-1]
		}
		rule.Keys = append(rule.Keys, fmt.Sprintf("k%d", i))
	}
	if _, err := e.profiles.SaveSettings(context.Background(), e.tenant.SpaceID(), set); err != nil {
		t.Fatal(err)
	}
}

// idFile is a file of user_id plus identifier columns k1…kn: u1 fills one, u2 fills them all.
func idFile(n int) string {
	var b strings.Builder
	b.WriteString("user_id")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ",k%d", i)
	}
	b.WriteString("\nu1,one" + strings.Repeat(",", n-1) + "\nu2")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ",v%d", i)
	}
	b.WriteString("\n")
	return b.String()
}

// Every limit the ingest enforces is checked when the file is validated: a file that breaks
// one on its third row fails whole, naming the row, the column and the limit, and writes
// nothing, not even its second row's profile. One short of each limit, the file completes.
func TestLimitsCheckedBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		ids      int // custom identifier keys to configure
		file     string
		row      int
		column   string
		inMsg    string
		complete bool
	}{
		{name: "traits: 299 in a row", file: wideFile(profile.MaxTraitsPerIdentify-1, "x"), complete: true},
		{name: "traits: 300 in a row", file: wideFile(profile.MaxTraitsPerIdentify, "x"),
			row: 3, column: fmt.Sprintf("c%d", profile.MaxTraitsPerIdentify), inMsg: "the row has 300 traits (non-empty cells other than user_id and anonymous_id); the limit is 299 traits per row"},
		{name: "identifiers: 96 in a row", ids: upload.MaxRowIdentifiers - 1, file: idFile(upload.MaxRowIdentifiers - 1), complete: true},
		{name: "identifiers: 97 in a row", ids: upload.MaxRowIdentifiers, file: idFile(upload.MaxRowIdentifiers),
			row: 3, inMsg: "the row carries 97 identifiers (custom1 10, custom11 10, "},
		{name: "row size: at the limit", file: "user_id,c1\nu1,x\nu2," + strings.Repeat("a", csvfile.MaxRowBytes-len("user_idc1u2")) + "\n", complete: true},
		{name: "row size: a byte over", file: "user_id,c1\nu1,x\nu2," + strings.Repeat("a", csvfile.MaxRowBytes-len("user_idc1u2")+1) + "\n",
			row: 3, column: "c1", inMsg: "the limit is 32,768 bytes per row"},
		{name: "profile size: longest values over the limit", file: "user_id,a,b,c,d,e\n" +
			"u1," + strings.Repeat("a", 30000) + ",,,,\nu1,," + strings.Repeat("b", 30000) + ",,,\nu1,,," + strings.Repeat("c", 30000) + ",,\n" +
			"u1,,,," + strings.Repeat("d", 30000) + ",\nu1,,,,," + strings.Repeat("e", 30000) + "\n",
			column: "a", inMsg: "the limit is 131,072 bytes of traits per file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			if c.ids > 0 {
				customIdentifiers(t, e, c.ids)
			}
			u := e.start(t, c.file)
			if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
				t.Fatal(err)
			}
			got := e.get(t, u.ID)
			_, err := e.lookup(t, "user_id:u1")
			if c.complete {
				if got.Status != upload.StatusCompleted || err != nil {
					t.Fatalf("upload %+v; u1: %v", got, err)
				}
				return
			}
			if got.Status != upload.StatusFailed || got.RowsDone != 0 || got.Failure != "" || got.ErrorsTotal != 1 {
				t.Fatalf("upload %+v", got)
			}
			if p := got.Errors[0]; p.Row != c.row || p.Column != c.column || !strings.Contains(p.Message, c.inMsg) {
				t.Errorf("problem %+v, want row %d column %q and %q", p, c.row, c.column, c.inMsg)
			}
			if err == nil {
				t.Error("u1's profile was written by a file that failed")
			}
		})
	}
}
