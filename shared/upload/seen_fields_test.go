package upload_test

import (
	"context"
	"maps"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/identity"
	"github.com/unifiedprofiles/up/shared/upload"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// process uploads file through the whole path and returns the upload's final state.
func (e *env) process(t *testing.T, file string) upload.Upload {
	t.Helper()
	u := e.start(t, file)
	if err := e.svc.Process(context.Background(), e.stored(u.ID)); err != nil {
		t.Fatal(err)
	}
	return e.get(t, u.ID)
}

func TestSeenFieldsOverCompletedUploads(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	seen := func(spaceID string) (ids, traits map[string]int) {
		t.Helper()
		f, err := e.svc.SeenFields(ctx, e.tenant.Owner, e.tenant.ID(), spaceID)
		if err != nil {
			t.Fatal(err)
		}
		return f.Identifiers, f.Traits
	}
	if ids, traits := seen(""); ids == nil || traits == nil || len(ids)+len(traits) != 0 {
		t.Fatalf("no uploads: %v %v, want empty maps", ids, traits)
	}

	if u := e.process(t, rows(3)); u.Status != upload.StatusCompleted {
		t.Fatalf("first upload %+v", u)
	}
	// A custom identifier read from a column of another name: the summary counts the column,
	// step 3 shows the identifier's type.
	set := identity.DefaultSettings()
	set.Identifiers = append(set.Identifiers, identity.Rule{Type: "phone", Custom: true, Keys: []string{"phone_number"}, Limit: 5, Window: identity.WindowWeekly, Priority: 20})
	if _, err := e.profiles.SaveSettings(ctx, e.tenant.SpaceID(), set); err != nil {
		t.Fatal(err)
	}
	if u := e.process(t, "user_id,phone_number,plan\nv1,+15550100,pro\nv2,+15550101,\n"); u.Status != upload.StatusCompleted {
		t.Fatalf("second upload %+v", u)
	}
	// A failed upload (here: no identifier column) wrote nothing, so it shows nothing.
	if u := e.process(t, "plan,tier\npro,gold\n"); u.Status != upload.StatusFailed {
		t.Fatalf("third upload %+v", u)
	}

	wantIDs := map[string]int{"user_id": 5, "email": 3, "phone": 2}
	wantTraits := map[string]int{"First Name": 3, "first name": 3, "plan": 3}
	tests := []struct {
		name        string
		spaceID     string
		ids, traits map[string]int
	}{
		{"every space", "", wantIDs, wantTraits},
		{"the uploads' space", e.tenant.SpaceID(), wantIDs, wantTraits},
		{"another space", "sp_other", map[string]int{}, map[string]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, traits := seen(tc.spaceID)
			if !maps.Equal(ids, tc.ids) || !maps.Equal(traits, tc.traits) {
				t.Fatalf("identifiers %v, want %v\ntraits %v, want %v", ids, tc.ids, traits, tc.traits)
			}
		})
	}

	// Once no rule reads the column, it keeps its name.
	if _, err := e.profiles.SaveSettings(ctx, e.tenant.SpaceID(), identity.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	if ids, _ := seen(""); ids["phone_number"] != 2 || ids["phone"] != 0 {
		t.Errorf("after removing phone: %v", ids)
	}

	// Another principal than the workspace's token may not read them.
	_, err := e.svc.SeenFields(ctx, workspace.Principal{Kind: workspace.Operator}, e.tenant.ID(), "")
	if !errcode.Is(err, "forbidden") {
		t.Fatalf("operator: %v", err)
	}
}
