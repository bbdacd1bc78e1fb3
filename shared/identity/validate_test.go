package identity

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
)

// validSettings is a small valid configuration the table below breaks one rule at a time.
func validSettings() Settings {
	return Settings{Identifiers: []Rule{
		{Type: TypeUserID, Limit: 1, Window: WindowEver, Priority: 1},
		{Type: TypeEmail, Limit: 5, Window: WindowWeekly, Priority: 2, Blocked: SuggestedBlocked()},
		{Type: "phone", Custom: true, Keys: []string{"phone", "phoneNumber"}, Limit: 5, Window: WindowAnnually, Priority: 3,
			Blocked: []Blocked{{MatchExact, "null"}, {MatchRegex, `^\+?0+$`}}},
	}}
}

// customRules returns n valid custom identifiers with priorities from first on.
func customRules(n, first int) []Rule {
	out := make([]Rule, n)
	for i := range out {
		typ := fmt.Sprintf("custom_%d", i)
		out[i] = Rule{Type: typ, Custom: true, Keys: []string{typ}, Limit: 1, Window: WindowEver, Priority: first + i}
	}
	return out
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(s *Settings)
		field  string // "" when valid
		reason string // a substring of the message
	}{
		{"valid", func(*Settings) {}, "", ""},
		{"all windows", func(s *Settings) {
			s.Identifiers[0].Window, s.Identifiers[1].Window, s.Identifiers[2].Window = WindowMonthly, WindowEver, WindowAnnually
		}, "", ""},
		{"limit bounds", func(s *Settings) { s.Identifiers[0].Limit, s.Identifiers[1].Limit = 1, 1000 }, "", ""},
		{"ten keys, 64 characters", func(s *Settings) {
			s.Identifiers[2].Keys = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "Z" + strings.Repeat("_9", 31) + "x"}
		}, "", ""},
		{"fifty blocked, 200 characters", func(s *Settings) {
			s.Identifiers[2].Blocked = slices.Repeat([]Blocked{{MatchExact, strings.Repeat("é", 200)}}, 50)
		}, "", ""},
		{"type of 64, dots and digits", func(s *Settings) { s.Identifiers[2].Type = strings.Repeat("a.1_", 16) }, "", ""},
		{"sparse priorities", func(s *Settings) { s.Identifiers[0].Priority, s.Identifiers[2].Priority = 100, 7 }, "", ""},

		{"fifteen custom identifiers", func(s *Settings) { s.Identifiers = append(s.Identifiers, customRules(14, 4)...) }, "", ""},
		{"sixteen custom identifiers", func(s *Settings) { s.Identifiers = append(s.Identifiers, customRules(15, 4)...) }, "identifiers", "at most 15"},
		{"no identifiers", func(s *Settings) { s.Identifiers = nil }, "identifiers", "at least one identifier"},
		{"type missing", func(s *Settings) { s.Identifiers[1].Type = "" }, "identifiers[1].type", "is required"},
		{"type upper case", func(s *Settings) { s.Identifiers[2].Type = "Phone" }, "identifiers[2].type", "lowercase"},
		{"type with colon", func(s *Settings) { s.Identifiers[2].Type = "tel:phone" }, "identifiers[2].type", "not a valid type"},
		{"type with space", func(s *Settings) { s.Identifiers[2].Type = "phone number" }, "identifiers[2].type", "not a valid type"},
		{"type too long", func(s *Settings) { s.Identifiers[2].Type = strings.Repeat("p", 65) }, "identifiers[2].type", "1 to 64"},
		{"unknown default", func(s *Settings) { s.Identifiers[2].Custom = false; s.Identifiers[2].Keys = nil }, "identifiers[2].type", "set custom to true"},
		{"custom named like a default", func(s *Settings) { s.Identifiers[2].Type = TypeEmail }, "identifiers[2].type", "already configured"},
		{"custom default type", func(s *Settings) { s.Identifiers[2].Type = TypeAnonymousID }, "identifiers[2].type", "cannot be custom"},
		{"duplicate type", func(s *Settings) { s.Identifiers = append(s.Identifiers, s.Identifiers[0]) }, "identifiers[3].type", "already configured at identifiers[0]"},
		{"custom without keys", func(s *Settings) { s.Identifiers[2].Keys = nil }, "identifiers[2].keys", "needs 1 to 10"},
		{"custom with eleven keys", func(s *Settings) {
			s.Identifiers[2].Keys = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"}
		}, "identifiers[2].keys", "at most 10"},
		{"key starts with digit", func(s *Settings) { s.Identifiers[2].Keys[1] = "1phone" }, "identifiers[2].keys[1]", "start with a letter"},
		{"key starts with underscore", func(s *Settings) { s.Identifiers[2].Keys[0] = "_phone" }, "identifiers[2].keys[0]", "not a valid key"},
		{"key with dot", func(s *Settings) { s.Identifiers[2].Keys[1] = "phone.number" }, "identifiers[2].keys[1]", "not a valid key"},
		{"key empty", func(s *Settings) { s.Identifiers[2].Keys[1] = "" }, "identifiers[2].keys[1]", "not a valid key"},
		{"key too long", func(s *Settings) { s.Identifiers[2].Keys[0] = strings.Repeat("k", 65) }, "identifiers[2].keys[0]", "not a valid key"},
		{"default with keys", func(s *Settings) { s.Identifiers[1].Keys = []string{"mail"} }, "identifiers[1].keys", "remove keys"},
		{"limit zero", func(s *Settings) { s.Identifiers[1].Limit = 0 }, "identifiers[1].limit", "between 1 and 1000"},
		{"limit over", func(s *Settings) { s.Identifiers[2].Limit = 1001 }, "identifiers[2].limit", "got 1001"},
		{"window missing", func(s *Settings) { s.Identifiers[0].Window = "" }, "identifiers[0].window", "ever, weekly, monthly, annually"},
		{"window daily", func(s *Settings) { s.Identifiers[0].Window = "daily" }, "identifiers[0].window", `got "daily"`},
		{"window case", func(s *Settings) { s.Identifiers[0].Window = "Weekly" }, "identifiers[0].window", "must be one of"},
		{"priority zero", func(s *Settings) { s.Identifiers[0].Priority = 0 }, "identifiers[0].priority", "1 or more"},
		{"priority negative", func(s *Settings) { s.Identifiers[2].Priority = -3 }, "identifiers[2].priority", "got -3"},
		{"duplicate priority", func(s *Settings) { s.Identifiers[2].Priority = 2 }, "identifiers[2].priority", "already the priority of identifiers[1] (email)"},
		{"fifty-one blocked", func(s *Settings) {
			s.Identifiers[0].Blocked = slices.Repeat([]Blocked{{MatchExact, "x"}}, 51)
		}, "identifiers[0].blocked", "at most 50"},
		{"blocked match missing", func(s *Settings) { s.Identifiers[2].Blocked[1].Match = "" }, "identifiers[2].blocked[1].match", "exact or regex"},
		{"blocked match case", func(s *Settings) { s.Identifiers[1].Blocked[0].Match = "Regex" }, "identifiers[1].blocked[0].match", `got "Regex"`},
		{"blocked value empty", func(s *Settings) { s.Identifiers[1].Blocked[3].Value = "" }, "identifiers[1].blocked[3].value", "is required"},
		{"blocked value too long", func(s *Settings) { s.Identifiers[2].Blocked[0].Value = strings.Repeat("é", 201) }, "identifiers[2].blocked[0].value", "201 characters"},
		{"regex does not compile", func(s *Settings) { s.Identifiers[2].Blocked[1].Value = `^(0+$` }, "identifiers[2].blocked[1].value", "missing closing )"},
		{"regex backreference", func(s *Settings) { s.Identifiers[2].Blocked[1].Value = `(a)\1` }, "identifiers[2].blocked[1].value", "invalid escape sequence"},
		{"regex lookahead", func(s *Settings) { s.Identifiers[2].Blocked[1].Value = `^(?!x)` }, "identifiers[2].blocked[1].value", "not a valid regular expression"},
		{"exact value is not compiled", func(s *Settings) { s.Identifiers[2].Blocked[0].Value = `^(0+$` }, "", ""},
		{"first error wins", func(s *Settings) {
			s.Identifiers[1].Limit = 0
			s.Identifiers[2].Type = ""
		}, "identifiers[1].limit", "between 1 and 1000"},
		{"first error within a rule", func(s *Settings) {
			s.Identifiers[2].Window = "x"
			s.Identifiers[2].Blocked[0].Match = "x"
		}, "identifiers[2].window", "must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := validSettings()
			tt.edit(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := Compile(s); err != nil {
					t.Fatalf("Compile() = %v after Validate passed", err)
				}
				return
			}
			e := errcode.As(err)
			if e == nil {
				t.Fatalf("Validate() = %v, want an *errcode.Error on %s", err, tt.field)
			}
			if e.Kind != errcode.Invalid || e.Code != "invalid_field" || e.Field != tt.field || !strings.Contains(e.Message, tt.reason) {
				t.Fatalf("Validate() = {kind %d, code %s, field %s, %q}, want invalid_field on %s saying %q",
					e.Kind, e.Code, e.Field, e.Message, tt.field, tt.reason)
			}
			if !strings.HasPrefix(e.Message, tt.field+": ") {
				t.Errorf("message %q does not start with the field path", e.Message)
			}
			if _, cerr := Compile(s); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("Compile() = %v, want Validate's error %v", cerr, err)
			}
		})
	}
}

func TestValidateClipsLongInput(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s.Identifiers[0].Window = strings.Repeat("w", 10_000)
	e := errcode.As(s.Validate())
	if e == nil || len(e.Message) > 300 {
		t.Fatalf("Validate() message is %d bytes: quoted input must be clipped", len(e.Message))
	}
}

func TestSettingsRule(t *testing.T) {
	t.Parallel()
	s := validSettings()
	tests := []struct {
		typ      string
		ok       bool
		priority int
	}{{"user_id", true, 1}, {"phone", true, 3}, {"ios.id", false, 0}, {"", false, 0}}
	for _, tt := range tests {
		r, ok := s.Rule(tt.typ)
		if ok != tt.ok || r.Priority != tt.priority || (ok && r.Type != tt.typ) {
			t.Errorf("Rule(%q) = %+v, %v; want priority %d, %v", tt.typ, r, ok, tt.priority, tt.ok)
		}
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s.Identifiers[0].Priority, s.Identifiers[1].Priority, s.Identifiers[2].Priority = 9, 4, 1
	n := s.Normalize()
	var got []string
	for _, r := range n.Identifiers {
		got = append(got, r.Type)
	}
	if want := []string{"phone", "email", "user_id"}; !slices.Equal(got, want) {
		t.Fatalf("Normalize order = %v, want %v (by priority)", got, want)
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("normalised settings do not validate: %v", err)
	}
	// A deep copy: editing the result leaves the input alone.
	n.Identifiers[0].Keys[0] = "changed"
	n.Identifiers[1].Blocked[0].Value = "changed"
	if s.Identifiers[2].Keys[0] != "phone" || s.Identifiers[1].Blocked[0].Value != `^[0-]*$` {
		t.Fatal("Normalize shares slices with its input")
	}
}

func TestCompile(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s.Identifiers[0].Priority, s.Identifiers[1].Priority, s.Identifiers[2].Priority = 3, 1, 2
	s.Identifiers[2].Keys = []string{"phone_number", "phoneNumber", "phone_number"} // variants of one key
	s.Identifiers[2].Blocked = append(s.Identifiers[2].Blocked, Blocked{MatchExact, "null"}, Blocked{MatchRegex, `^\+?0+$`})
	c, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range c.Rules() {
		order = append(order, r.Type)
	}
	if want := []string{"email", "phone", "user_id"}; !slices.Equal(order, want) {
		t.Errorf("Rules() order = %v, want %v", order, want)
	}
	if r, ok := c.Rule("phone"); !ok || r.Priority != 2 || !r.Custom {
		t.Errorf("Rule(phone) = %+v, %v", r, ok)
	}
	if _, ok := c.Rule("ios.id"); ok {
		t.Error("Rule(ios.id) found an unconfigured type")
	}
	phone := &c.rules[c.byType["phone"]]
	if want := []string{"phone_number", "phoneNumber"}; !slices.Equal(phone.names, want) {
		t.Errorf("phone lookup names = %v, want %v", phone.names, want)
	}
	if len(phone.exact) != 1 || len(phone.regexes) != 1 || len(phone.classes) != 0 {
		t.Errorf("repeated blocked values compiled twice: exact %v, %d regexes", phone.exact, len(phone.regexes))
	}
	// Compile copies: editing the settings afterwards does not change the compiled form.
	s.Identifiers[2].Blocked[0].Value = "changed"
	if !c.Blocked("phone", "null") {
		t.Error("Compiled shares the blocked list with its input")
	}

	blocked := []struct {
		typ, value string
		want       bool
	}{
		{"phone", "null", true}, {"phone", "+000", true}, {"phone", "000", true}, {"phone", "+15551234567", false},
		{"phone", "Null", false}, {"user_id", "null", false}, {"email", "null", true}, {"email", "0", true},
		{"ios.id", "null", false}, // not configured
	}
	for _, tt := range blocked {
		if got := c.Blocked(tt.typ, tt.value); got != tt.want {
			t.Errorf("Blocked(%q, %q) = %v, want %v", tt.typ, tt.value, got, tt.want)
		}
	}
}

func TestCompileSharesPatternsAcrossRules(t *testing.T) {
	t.Parallel()
	s := DefaultSettings()
	for i := range s.Identifiers {
		s.Identifiers[i].Blocked = append(s.Identifiers[i].Blocked, Blocked{MatchRegex, `^(test|demo)`})
	}
	c := mustCompile(t, s)
	first := c.rules[0]
	for _, r := range c.rules {
		// The suggested ^[0-]*$ takes the rune-class path; other patterns compile once.
		if len(r.classes) != 1 || &r.classes[0].ranges[0] != &first.classes[0].ranges[0] {
			t.Fatalf("%s: ^[0-]*$ not prepared once as a rune class: %+v", r.Type, r.classes)
		}
		if len(r.regexes) != 1 || r.regexes[0] != first.regexes[0] {
			t.Fatalf("%s: the shared regex was compiled again", r.Type)
		}
	}
}

func TestWholeValueClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		class   bool
	}{
		{`^[0-]*$`, true}, {`^0+$`, true}, {`^\d+$`, true}, {`^[^a-z]*$`, true}, {`\A[x-]*\z`, true},
		{`^[0-]*?$`, true},
		{`[0-]*`, false}, {`^[0-]*`, false}, {`(?m)^0*$`, false}, {`(?i)^a*$`, false}, {`^([0-]*)$`, false},
		{`^0*1$`, false}, {`^.*$`, false}, {`^(ab)*$`, false},
	}
	values := []string{"", "0", "000", "-", "0-0", "-1", "1", "a", "A", "x-x", "é", "\xff", "0\n", "\n0", "00a", "123"}
	for _, tt := range tests {
		rc, ok := wholeValueClass(tt.pattern)
		if ok != tt.class {
			t.Errorf("wholeValueClass(%q) = %v, want %v", tt.pattern, ok, tt.class)
			continue
		}
		if !ok {
			continue
		}
		re := regexp.MustCompile(tt.pattern)
		for _, v := range values {
			if got, want := rc.match(v), re.MatchString(v); got != want {
				t.Errorf("%q on %q: rune class says %v, regexp says %v", tt.pattern, v, got, want)
			}
		}
	}
}

// FuzzBlockedRegex: the rune-class fast path answers exactly as package regexp.
func FuzzBlockedRegex(f *testing.F) {
	f.Add(`^[0-]*$`, "0-0")
	f.Add(`^[^a]+$`, "\xffb")
	f.Add(`^\pL*$`, "héllo")
	f.Add(`^[[:digit:]]+$`, "")
	f.Fuzz(func(t *testing.T, pattern, value string) {
		rc, ok := wholeValueClass(pattern)
		if !ok {
			return
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("%q took the fast path but does not compile: %v", pattern, err)
		}
		if got, want := rc.match(value), re.MatchString(value); got != want {
			t.Fatalf("%q on %q: rune class says %v, regexp says %v", pattern, value, got, want)
		}
	})
}

func TestUnanchoredRegexMatchesInside(t *testing.T) {
	t.Parallel()
	s := validSettings()
	s.Identifiers[0].Blocked = []Blocked{{MatchRegex, "test"}}
	c, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Blocked(TypeUserID, "my-test-user") || c.Blocked(TypeUserID, "TEST") {
		t.Fatal("regex blocking must use Go's unanchored, case-sensitive MatchString")
	}
}

func TestKeyVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want []string
	}{
		{"phone", []string{"phone"}},
		{"phone_number", []string{"phone_number", "phoneNumber"}},
		{"phoneNumber", []string{"phoneNumber", "phone_number"}},
		{"PhoneNumber", []string{"PhoneNumber", "phone_number", "phoneNumber"}},
		{"userID", []string{"userID", "user_id", "userId"}},
		{"IDNumber", []string{"IDNumber", "id_number", "idNumber"}},
		{"address2Line", []string{"address2Line", "address2_line"}},
		{"phone__number_", []string{"phone__number_", "phoneNumber"}},
		{"Phone", []string{"Phone", "phone"}},
	}
	for _, tt := range tests {
		if got := keyVariants(tt.key); !slices.Equal(got, tt.want) {
			t.Errorf("keyVariants(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

// FuzzValidate: any settings JSON either fails validation with a field path, or validates,
// compiles, and still validates once normalised.
func FuzzValidate(f *testing.F) {
	def, _ := json.Marshal(DefaultSettings())
	f.Add(def)
	valid, _ := json.Marshal(validSettings())
	f.Add(valid)
	f.Add([]byte(`{"identifiers":[]}`))
	f.Add([]byte(`{"identifiers":[{"type":"phone","custom":true,"keys":["phone"],"limit":5,"window":"ever","priority":1,"blocked":[{"match":"regex","value":"(a"}]}]}`))
	f.Add([]byte(`{"identifiers":[{"type":"email","custom":true,"keys":["e"],"limit":1,"window":"ever","priority":1}]}`))
	f.Add([]byte(`{"identifiers":[{"type":"user_id","limit":1,"window":"ever","priority":1},{"type":"email","limit":1,"window":"ever","priority":1}]}`))
	fieldPath := regexp.MustCompile(`^identifiers(\[\d+\]\.(type|custom|keys(\[\d+\])?|limit|window|priority|blocked(\[\d+\]\.(match|value))?))?$`)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Settings
		if json.Unmarshal(data, &s) != nil {
			return
		}
		err := s.Validate()
		if err != nil {
			e := errcode.As(err)
			if e == nil || e.Kind != errcode.Invalid || !fieldPath.MatchString(e.Field) {
				t.Fatalf("Validate() = %#v: want an invalid_field error with a field path", err)
			}
			if _, cerr := Compile(s); cerr == nil {
				t.Fatal("Compile succeeded on settings Validate refused")
			}
			return
		}
		c, err := Compile(s)
		if err != nil {
			t.Fatalf("Validate passed but Compile failed: %v", err)
		}
		if len(c.Rules()) != len(s.Identifiers) {
			t.Fatalf("compiled %d rules from %d identifiers", len(c.Rules()), len(s.Identifiers))
		}
		if err := s.Normalize().Validate(); err != nil {
			t.Fatalf("normalised settings no longer validate: %v", err)
		}
	})
}
