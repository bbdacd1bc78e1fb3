package predict_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/predict"
)

// Spec.Validate, as POST …/predictions decodes a body: each refusal is a 400 invalid_field
// naming the field at fault, and says what to send instead.
func TestSpecValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		field      string // "" when valid
		says       string
	}{
		{"churn", `{"kind":"churn","key":"likely_to_churn","event":"Order Completed","window_days":30}`, "", ""},
		{"purchase, two events, a property", `{"kind":"purchase","key":"will_buy","events":["Order Completed","Subscription Started"],"property":"total","window_days":15}`, "", ""},
		{"custom, one event", `{"kind":"custom","key":"will_sign_up","events":["Signed Up"],"window_days":120}`, "", ""},
		{"ltv", `{"kind":"ltv","key":"predicted_ltv","purchase_event":"Order Completed","revenue_property":"revenue","currency":"USD"}`, "", ""},
		{"ltv with its window", `{"kind":"ltv","key":"ltv","purchase_event":"Order Completed","revenue_property":"value","window_days":120}`, "", ""},

		{"no kind", `{"key":"k","event":"e","window_days":30}`, "kind", "is required"},
		{"unknown kind", `{"kind":"upsell","key":"k"}`, "kind", `"upsell" is not one of churn, purchase, custom, ltv`},
		{"no key", `{"kind":"churn","event":"e","window_days":30}`, "key", "is required"},
		{"key not snake_case", `{"kind":"churn","key":"Churn Risk","event":"e","window_days":30}`, "key", "snake_case"},
		{"key too long", `{"kind":"churn","key":"` + strings.Repeat("k", 101) + `","event":"e","window_days":30}`, "key", "longer than 100"},
		{"churn without event", `{"kind":"churn","key":"k","window_days":30}`, "event", "is required"},
		{"churn with a blank event", `{"kind":"churn","key":"k","event":"  ","window_days":30}`, "event", "blank"},
		{"churn without window", `{"kind":"churn","key":"k","event":"e"}`, "window_days", "is required"},
		{"churn with a 45-day window", `{"kind":"churn","key":"k","event":"e","window_days":45}`, "window_days", "45 is not one of 15, 30, 60, 90 or 120"},
		{"churn with events", `{"kind":"churn","key":"k","event":"e","events":["e"],"window_days":30}`, "events", "does not apply to a churn prediction"},
		{"churn with a property", `{"kind":"churn","key":"k","event":"e","property":"total","window_days":30}`, "property", "only to purchase and custom"},
		{"churn with a currency", `{"kind":"churn","key":"k","event":"e","currency":"USD","window_days":30}`, "currency", "only to ltv"},
		{"purchase without events", `{"kind":"purchase","key":"k","window_days":30}`, "events", "is required"},
		{"purchase with no event", `{"kind":"purchase","key":"k","events":[],"window_days":30}`, "events", "has 0 events; give 1 or 2"},
		{"purchase with three events", `{"kind":"purchase","key":"k","events":["a","b","c"],"window_days":30}`, "events", "has 3 events"},
		{"purchase with one event twice", `{"kind":"purchase","key":"k","events":["a","a"],"window_days":30}`, "events[1]", "repeats events[0]"},
		{"custom with an empty event", `{"kind":"custom","key":"k","events":["a",""],"window_days":30}`, "events[1]", "blank"},
		{"custom with a long event", `{"kind":"custom","key":"k","events":["` + strings.Repeat("e", 201) + `"],"window_days":30}`, "events[0]", "longer than 200"},
		{"purchase with event (singular)", `{"kind":"purchase","key":"k","event":"a","window_days":30}`, "event", "only to churn"},
		{"purchase with an unknown property", `{"kind":"purchase","key":"k","events":["a"],"property":"amount","window_days":30}`, "property", "use one of revenue, total, value, price"},
		{"purchase with an empty property", `{"kind":"purchase","key":"k","events":["a"],"property":"","window_days":30}`, "property", "is not a money property"},
		{"purchase with a purchase_event", `{"kind":"purchase","key":"k","events":["a"],"purchase_event":"a","window_days":30}`, "purchase_event", "only to ltv"},
		{"purchase with a 0-day window", `{"kind":"purchase","key":"k","events":["a"],"window_days":0}`, "window_days", "0 is not one of"},
		{"ltv without purchase event", `{"kind":"ltv","key":"k","revenue_property":"revenue"}`, "purchase_event", "is required"},
		{"ltv without revenue property", `{"kind":"ltv","key":"k","purchase_event":"Order Completed"}`, "revenue_property", "is required"},
		{"ltv with an unknown revenue property", `{"kind":"ltv","key":"k","purchase_event":"o","revenue_property":"amount"}`, "revenue_property", "use one of revenue, total, value, price"},
		{"ltv with a 30-day window", `{"kind":"ltv","key":"k","purchase_event":"o","revenue_property":"total","window_days":30}`, "window_days", "always looks 120 days ahead"},
		{"ltv with a lowercase currency", `{"kind":"ltv","key":"k","purchase_event":"o","revenue_property":"total","currency":"usd"}`, "currency", "ISO 4217"},
		{"ltv with events", `{"kind":"ltv","key":"k","events":["o"],"revenue_property":"total"}`, "events", "does not apply to an ltv prediction"},
		{"ltv with a property", `{"kind":"ltv","key":"k","purchase_event":"o","revenue_property":"total","property":"total"}`, "property", "only to purchase and custom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var s predict.Spec
			dec := json.NewDecoder(strings.NewReader(tc.body))
			dec.DisallowUnknownFields() // as the API decodes
			if err := dec.Decode(&s); err != nil {
				t.Fatalf("decode: %v", err)
			}
			err := s.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e := errcode.As(err)
			if e == nil || e.Kind != errcode.Invalid || e.Code != "invalid_field" || e.Field != tc.field {
				t.Fatalf("error %#v, want invalid_field on %q", err, tc.field)
			}
			if !strings.Contains(e.Message, tc.says) || !strings.HasPrefix(e.Message, tc.field+": ") {
				t.Errorf("message %q, want it to name %s and say %q", e.Message, tc.field, tc.says)
			}
		})
	}
}
