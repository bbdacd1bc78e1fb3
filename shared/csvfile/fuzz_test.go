package csvfile

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/unifiedprofiles/up/shared/message"
)

// FuzzValidate: Validate never panics or fails on an in-memory file; it keeps at most
// MaxProblems problems, in row order, each with a message; Total counts at least those kept;
// OK() is Total == 0; reading a byte at a time changes nothing; and a file that validates
// streams exactly Rows identify messages whose Raw is a JSON object of the row's non-empty
// cells.
func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		"email\na@b.co\n",
		"\xEF\xBB\xBFuser_id,anonymous_id,email,First Name\r\nu1,a1,x@y.z,Zoë\r\n,a2,,\r\n",
		"email,x\na@b.co,g͟h h̤ ŕ \u0324 g\u035Fa\n",
		"email,email, x ,,\"a,b\"\n a,b  c,\xff,\"q\"\"\",\"\n\"\n",
		"email\na\"b\n\"c\"d\n\"unclosed\n",
		"email,x\na,b,c\nd\n",
		"name\nJane\n",
		"email\n",
		"",
		"\n\n",
		"\r\r\r",
		"email\r\na@b.co\r",
	} {
		f.Add([]byte(seed), "people.csv")
	}
	f.Add([]byte("email\na@b.co\n"), "people.txt")
	f.Add([]byte(strings.Repeat("email,x\nŕ,ŕ\n", 80)), "Many.CSV")

	f.Fuzz(func(t *testing.T, data []byte, filename string) {
		rep, err := Validate(strings.NewReader(string(data)), filename, testCols)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		if len(rep.Problems) > MaxProblems || rep.Total < len(rep.Problems) || rep.OK() != (rep.Total == 0) {
			t.Fatalf("report: %d problems kept, Total %d, OK %v", len(rep.Problems), rep.Total, rep.OK())
		}
		if rep.Total > len(rep.Problems) && len(rep.Problems) != MaxProblems {
			t.Fatalf("Total %d but only %d kept", rep.Total, len(rep.Problems))
		}
		last := 0
		for _, p := range rep.Problems {
			if p.Row < last || p.Message == "" || p.Row > rep.Rows+1 {
				t.Fatalf("problem out of place: %+v (previous row %d, %d rows)", p, last, rep.Rows)
			}
			last = p.Row
			if p.Char != "" && !strings.Contains(p.Message, p.Char) && !strings.Contains(p.Message, strconv.Quote(p.Char)) {
				t.Fatalf("the message does not name the character: %+v", p)
			}
		}
		rep1, err := Validate(iotest.OneByteReader(strings.NewReader(string(data))), filename, testCols)
		if err != nil || !reflect.DeepEqual(rep, rep1) {
			t.Fatalf("a byte at a time: %v\n%+v\n%+v", err, rep, rep1)
		}
		if !rep.OK() {
			return
		}
		n := 0
		err = Messages(strings.NewReader(string(data)), "up", at, 0, func(i int, m message.Message) error {
			if i != n || m.Type != message.Identify || m.UserID == "" && m.AnonymousID == "" && len(m.Traits) == 0 {
				t.Fatalf("row %d: %+v", i, m)
			}
			var obj map[string]string
			if err := json.Unmarshal(m.Raw, &obj); err != nil {
				t.Fatalf("row %d: Raw %s: %v", i, m.Raw, err)
			}
			for k, v := range m.Traits {
				if obj[k] != v {
					t.Fatalf("row %d: trait %q = %v, Raw has %q", i, k, v, obj[k])
				}
			}
			n++
			return nil
		})
		if err != nil || n != rep.Rows {
			t.Fatalf("Messages: %d of %d rows, err %v", n, rep.Rows, err)
		}
	})
}
