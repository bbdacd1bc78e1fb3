package dynamo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/unifiedprofiles/up/shared/store"
	"github.com/unifiedprofiles/up/shared/store/dynamo"
)

// TestQueryRequests checks the key condition, order and Limit each shape of page sends (one
// more item than the Limit when the range holds the cursor's own item), that a page no key
// can match sends nothing, and that the placeholders sent and used match exactly.
func TestQueryRequests(t *testing.T) {
	t.Parallel()
	const (
		all    = "#pk = :pk"
		begins = all + " AND begins_with(#sk, :prefix)"
	)
	tests := []struct {
		page   store.Page
		cond   string // "" when no request is sent
		limit  int32  // 0: no Limit
		values string // the sort-key values sent, in order :prefix, :after, :end
	}{
		{store.Page{Desc: true}, all, 0, ""},
		{store.Page{Desc: true, Limit: 5}, all, 5, ""},
		{store.Page{Desc: true, Prefix: "E#"}, begins, 0, "E#"},
		{store.Page{Desc: true, After: "E#3", Limit: 2}, all + " AND #sk < :after", 2, "E#3"},
		{store.Page{Desc: true, Prefix: "E#", After: "E#3", Limit: 2}, all + " AND #sk BETWEEN :prefix AND :after", 3, "E#,E#3"},
		{store.Page{Desc: true, Prefix: "E#", After: "E$"}, begins, 0, "E#"},
		{store.Page{Desc: true, Prefix: "E#", After: "F", Limit: 1}, begins, 1, "E#"},
		{store.Page{Desc: true, Prefix: "E#", After: "E#"}, "", 0, ""},
		{store.Page{Desc: true, Prefix: "E#", After: "E"}, "", 0, ""},
		{store.Page{Desc: true, Prefix: "E#", After: "A"}, "", 0, ""},
		{store.Page{}, all, 0, ""},
		{store.Page{Prefix: "E#", After: "A"}, begins, 0, "E#"},
		{store.Page{After: "E#3"}, all + " AND #sk > :after", 0, "E#3"},
		{store.Page{Prefix: "E#", After: "E#3", Limit: 2}, all + " AND #sk BETWEEN :after AND :end", 3, "E#3,E$"},
		{store.Page{Prefix: "E#", After: "F"}, "", 0, ""},
	}
	for _, tc := range tests {
		f := &fakeAPI{}
		if _, err := dynamo.New(f, "T").Query(context.Background(), "P", tc.page); err != nil {
			t.Fatalf("Query %#v: %v", tc.page, err)
		}
		if tc.cond == "" {
			if len(f.calls) != 0 {
				t.Errorf("Query %#v sent %v, want nothing", tc.page, f.calls)
			}
			continue
		}
		if len(f.calls) != 1 {
			t.Errorf("Query %#v sent %v, want one Query", tc.page, f.calls)
			continue
		}
		in := f.sent[0].(*dynamodb.QueryInput)
		cond := aws.ToString(in.KeyConditionExpression)
		if cond != tc.cond {
			t.Errorf("Query %#v: key condition %q, want %q", tc.page, cond, tc.cond)
		}
		if got := aws.ToBool(in.ScanIndexForward); got == tc.page.Desc {
			t.Errorf("Query %#v: ScanIndexForward %v", tc.page, got)
		}
		if !aws.ToBool(in.ConsistentRead) {
			t.Errorf("Query %#v: not consistent", tc.page)
		}
		if got := aws.ToInt32(in.Limit); got != tc.limit {
			t.Errorf("Query %#v: Limit %d, want %d", tc.page, got, tc.limit)
		}
		var vals []string
		for _, name := range []string{":prefix", ":after", ":end"} {
			if v, ok := in.ExpressionAttributeValues[name].(*types.AttributeValueMemberS); ok {
				vals = append(vals, v.Value)
			}
		}
		if got := strings.Join(vals, ","); got != tc.values {
			t.Errorf("Query %#v: values %q, want %q", tc.page, got, tc.values)
		}
		used := map[string]bool{}
		for _, m := range placeholder.FindAllString(cond, -1) {
			used[m] = true
			_, n := in.ExpressionAttributeNames[m]
			_, v := in.ExpressionAttributeValues[m]
			if !n && !v {
				t.Errorf("Query %#v: %s used but not sent", tc.page, m)
			}
		}
		for name := range in.ExpressionAttributeNames {
			if !used[name] {
				t.Errorf("Query %#v: name %s sent but unused", tc.page, name)
			}
		}
		for name := range in.ExpressionAttributeValues {
			if !used[name] {
				t.Errorf("Query %#v: value %s sent but unused", tc.page, name)
			}
		}
	}
}

// TestExpiryDesc: a descending Limit is filled past expired items at the top of the
// partition, which count against DynamoDB's own Limit, by paging on.
func TestExpiryDesc(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *dynamo.Store, c *clock) {
		ctx := context.Background()
		putExpiring(t, s, func(i int) bool { return i%2 == 0 || i >= 8 }) // even items and the newest two expire first
		tests := []struct {
			now  int64
			page store.Page
			want string
		}{
			{t0 + 4, store.Page{Limit: 3, Desc: true}, "i9,i8,i7"},
			{t0 + 5, store.Page{Limit: 1, Desc: true}, "i7"},
			{t0 + 5, store.Page{Limit: 3, Desc: true}, "i7,i5,i3"},
			{t0 + 5, store.Page{Limit: 3, Desc: true, After: "i5"}, "i3,i1"},
			{t0 + 5, store.Page{Limit: 1, Desc: true, Prefix: "i", After: "i8"}, "i7"},
			{t0 + 5, store.Page{Desc: true, Prefix: "i", After: "i30"}, "i3,i1"}, // cursor need not be a stored key
			{t0 + 10, store.Page{Desc: true, Limit: 2}, ""},
		}
		for _, tc := range tests {
			c.Set(tc.now)
			items, err := s.Query(ctx, "P", tc.page)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.SK)
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("at t0+%d Query %#v = %q, want %q", tc.now-t0, tc.page, got, tc.want)
			}
		}
	})
}
