package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A key in an error or a log line never shows an identifier's value, yet two keys stay
// distinguishable.
func TestKeyStringHidesValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key    Key
		hidden []string
		kept   []string
	}{
		{Key{PK: "SP#sp_1#ID#email:ada@example.com", SK: "C"}, []string{"ada@example.com", "ada", "example.com"}, []string{"SP#sp_1#ID#email:~", "|C"}},
		{Key{PK: "SP#sp_1#ID#phone:+14155550100", SK: "C"}, []string{"+14155550100", "4155550100"}, []string{"phone:~"}},
		{Key{PK: "SP#sp_1#ID#anonymous_id:flex:+14155550100", SK: "C"}, []string{"14155550100"}, []string{"anonymous_id:~"}},
		{Key{PK: "WS#ws_1", SK: "SRC#src_1"}, nil, []string{"WS#ws_1|SRC#src_1"}},
	} {
		s := tc.key.String()
		for _, h := range tc.hidden {
			if strings.Contains(s, h) {
				t.Errorf("%q shows %q", s, h)
			}
		}
		for _, k := range tc.kept {
			if !strings.Contains(s, k) {
				t.Errorf("%q lacks %q", s, k)
			}
		}
		err := fmt.Errorf("dynamo: write %s: %w", tc.key, errors.New("throttled"))
		if ce := (&ConditionError{Key: tc.key}); len(tc.hidden) > 0 && (strings.Contains(err.Error(), tc.hidden[0]) || strings.Contains(ce.Error(), tc.hidden[0])) {
			t.Errorf("an error shows %q: %v / %v", tc.hidden[0], err, ce)
		}
	}
	a := Key{PK: "SP#s#ID#email:a@x.com", SK: "C"}.String()
	b := Key{PK: "SP#s#ID#email:b@x.com", SK: "C"}.String()
	if a == b {
		t.Errorf("two identifiers give one name: %s", a)
	}
}
