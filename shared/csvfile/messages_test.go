package csvfile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unifiedprofiles/up/shared/message"
)

var at = time.Date(2025, 11, 3, 14, 30, 0, 0, time.UTC)

func collect(t *testing.T, data, upload string, from int) ([]int, []message.Message) {
	t.Helper()
	var idx []int
	var ms []message.Message
	err := Messages(strings.NewReader(data), upload, at, from, func(i int, m message.Message) error {
		idx = append(idx, i)
		ms = append(ms, m)
		return nil
	})
	if err != nil {
		t.Fatalf("Messages: %v", err)
	}
	return idx, ms
}

const peopleCSV = "\xEF\xBB\xBFuser_id,anonymous_id,email,First Name,first name,phone,loyalty_id\r\n" +
	"u1,,jane@example.com,Jane,jane,,L-1\r\n" +
	",anon-2,,,,+14155550100,\r\n" +
	"u3,anon-3,bob@example.com,Bob,,,\r\n" +
	"\"u4\",,\"back\\slash\",,,,\r\n"

func TestMessagesMapping(t *testing.T) {
	t.Parallel()
	cols := Columns{Identifiers: []string{"user_id", "email", "phone", "anonymous_id", "loyalty_id"}}
	if rep := validate(t, "people.csv", peopleCSV, cols); !rep.OK() || rep.Rows != 4 {
		t.Fatalf("fixture does not validate: %d rows\n%s", rep.Rows, dump(rep.Problems))
	}
	idx, ms := collect(t, peopleCSV, "upl_42", 0)
	want := []message.Message{
		{UserID: "u1", Traits: map[string]any{"email": "jane@example.com", "First Name": "Jane", "first name": "jane", "loyalty_id": "L-1"},
			Raw: json.RawMessage(`{"user_id":"u1","email":"jane@example.com","First Name":"Jane","first name":"jane","loyalty_id":"L-1"}`)},
		{AnonymousID: "anon-2", Traits: map[string]any{"phone": "+14155550100"},
			Raw: json.RawMessage(`{"anonymous_id":"anon-2","phone":"+14155550100"}`)},
		{UserID: "u3", AnonymousID: "anon-3", Traits: map[string]any{"email": "bob@example.com", "First Name": "Bob"},
			Raw: json.RawMessage(`{"user_id":"u3","anonymous_id":"anon-3","email":"bob@example.com","First Name":"Bob"}`)},
		{UserID: "u4", Traits: map[string]any{"email": `back\slash`},
			Raw: json.RawMessage(`{"user_id":"u4","email":"back\\slash"}`)},
	}
	for i := range want {
		want[i].Type = message.Identify
		want[i].MessageID = "upl_42-" + strconv.Itoa(i)
		want[i].Timestamp, want[i].ReceivedAt = at, at
	}
	if !reflect.DeepEqual(idx, []int{0, 1, 2, 3}) {
		t.Fatalf("indexes %v", idx)
	}
	for i := range want {
		if !reflect.DeepEqual(ms[i], want[i]) {
			t.Errorf("message %d:\n got %+v raw %s\nwant %+v raw %s", i, ms[i], ms[i].Raw, want[i], want[i].Raw)
		}
		if !json.Valid(ms[i].Raw) {
			t.Errorf("message %d: Raw is not JSON", i)
		}
	}
	// Each message owns its Raw and Traits.
	if &ms[0].Raw[0] == &ms[1].Raw[0] {
		t.Error("messages share Raw")
	}
}

func TestMessagesResume(t *testing.T) {
	t.Parallel()
	_, all := collect(t, peopleCSV, "u", 0)
	for from := 0; from <= 5; from++ {
		idx, ms := collect(t, peopleCSV, "u", from)
		if len(ms) != max(0, 4-from) {
			t.Fatalf("from %d: %d messages", from, len(ms))
		}
		for k, m := range ms {
			if idx[k] != from+k || !reflect.DeepEqual(m, all[from+k]) {
				t.Fatalf("from %d: message %d is row %d %+v", from, k, idx[k], m)
			}
		}
	}
}

func TestMessagesStopsOnError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	calls := 0
	err := Messages(strings.NewReader(peopleCSV), "u", at, 0, func(i int, m message.Message) error {
		calls++
		if i == 1 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 2 {
		t.Fatalf("err %v after %d calls; want stop after 2", err, calls)
	}
}

func TestMessagesBadFile(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"email\na@b.co,x\n", "email\n\"a\n", "email\na\"b\n"} {
		err := Messages(strings.NewReader(data), "u", at, 0, func(int, message.Message) error { return nil })
		var perr *csv.ParseError
		if !errors.As(err, &perr) {
			t.Errorf("%q: err = %v, want a csv.ParseError", data, err)
		}
	}
	// An empty file has no messages.
	if _, ms := collect(t, "", "u", 0); len(ms) != 0 {
		t.Fatal("messages from an empty file")
	}
}

func TestMessagesLargeFile(t *testing.T) {
	t.Parallel()
	n := 0
	err := Messages(newRowsReader(MaxRows, -1), "big", at, 9000, func(i int, m message.Message) error {
		if m.MessageID != "big-"+strconv.Itoa(i) || m.UserID != "u"+strconv.Itoa(i) || m.Traits["First Name"] != "Jane" {
			t.Fatalf("row %d: %+v", i, m)
		}
		n++
		return nil
	})
	if err != nil || n != MaxRows-9000 {
		t.Fatalf("%d messages, err %v", n, err)
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cols   Columns
		header []string
	}{
		{testCols, []string{"user_id", "email", "phone", "anonymous_id", "first_name"}},
		{Columns{Identifiers: []string{"email", "loyalty_id", "email"}}, []string{"email", "loyalty_id", "first_name"}},
		{Columns{Identifiers: []string{"first_name"}}, []string{"first_name"}},
		{Columns{}, []string{"user_id", "anonymous_id", "first_name"}},
	} {
		tpl := Template(tc.cols)
		recs, err := csv.NewReader(bytes.NewReader(tpl)).ReadAll()
		if err != nil {
			t.Fatalf("%v: template does not parse: %v\n%s", tc.cols, err, tpl)
		}
		if len(recs) != 2 || !reflect.DeepEqual(recs[0], tc.header) {
			t.Fatalf("%v: template %q, want header %q and one row", tc.cols, recs, tc.header)
		}
		rep, err := Validate(bytes.NewReader(tpl), "template.csv", tc.cols)
		if err != nil || !rep.OK() || rep.Rows != 1 {
			t.Fatalf("%v: template does not validate: %v\n%s", tc.cols, err, dump(rep.Problems))
		}
		_, ms := collect(t, string(tpl), "tpl", 0)
		if len(ms) != 1 {
			t.Fatalf("%v: %d messages", tc.cols, len(ms))
		}
	}
	if got, want := string(Template(testCols)), "user_id,email,phone,anonymous_id,first_name\r\nuser-1001,jane.doe@example.com,+14155550100,anon-7f3a9c,Jane\r\n"; got != want {
		t.Errorf("Template = %q, want %q", got, want)
	}
}
