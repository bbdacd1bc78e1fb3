package profile

import (
	"encoding/json"
	"testing"

	"github.com/unifiedprofiles/up/shared/identity"
)

// checkClaimOwner: claimOwner answers what json.Unmarshal into a claim answers.
func checkClaimOwner(t *testing.T, data []byte) {
	t.Helper()
	var c claim
	wantErr := json.Unmarshal(data, &c)
	got, err := claimOwner(data)
	if (err != nil) != (wantErr != nil) || (err == nil && got != c.ProfileID) {
		t.Errorf("claimOwner(%q) = %q, %v; json.Unmarshal: %q, %v", data, got, err, c.ProfileID, wantErr)
	}
}

func TestClaimOwner(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		`{"profile_id":"prof_2al5e52bmzlfkityc44jvawjis"}`, // as item writes it
		`{"profile_id":""}`,
		`{"profile_id":"a\"b"}`, `{"profile_id":"a\\b"}`, `{"profile_id":"\u003cb\u003e"}`, `{"profile_id":"é"}`,
		"{\"profile_id\":\"\xff\"}", "{\"profile_id\":\"a\x01\"}", `{"profile_id":"a"b"}`, `{"profile_id":"a"} "}`,
		`{ "profile_id": "p" }`, `{"profile_id":"p","x":1}`, `{"profile_id":"`, `"}`, `{"profile_id":"}`, `{}`, ``, `null`,
	} {
		checkClaimOwner(t, []byte(data))
	}
	for _, id := range []string{"prof_1", "<&>", "a\"b", "\u2028", "\xff", "\x00"} {
		checkClaimOwner(t, item(claimKey("sp", identity.Identifier{Type: "user_id", Value: "u"}), claim{ProfileID: id}).Data)
	}
}

func FuzzClaimOwner(f *testing.F) {
	f.Add([]byte(`{"profile_id":"prof_1"}`))
	f.Add([]byte(`{"profile_id":"a\"b"}`))
	f.Add([]byte("{\"profile_id\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) { checkClaimOwner(t, data) })
}
