package csvfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

var testCols = Columns{Identifiers: []string{"user_id", "email", "phone", "anonymous_id"}}

const hint = "use English letters, digits, the listed accented letters and !@#$%^&*()_+-=[]{}:\\|.`~<>/?"

func validate(t *testing.T, filename, data string, cols Columns) Report {
	t.Helper()
	rep, err := Validate(strings.NewReader(data), filename, cols)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	// The same file read a byte at a time gives the same report.
	rep1, err := Validate(iotest.OneByteReader(strings.NewReader(data)), filename, cols)
	if err != nil {
		t.Fatalf("Validate (one byte at a time): %v", err)
	}
	if !reflect.DeepEqual(rep, rep1) {
		t.Fatalf("reading a byte at a time changed the report:\n%+v\n%+v", rep, rep1)
	}
	if rep.OK() != (rep.Total == 0) || rep.Total < len(rep.Problems) {
		t.Fatalf("inconsistent report %+v", rep)
	}
	return rep
}

// TestValidateMatrix has, for every rule, files that pass and files that fail with the exact
// problems.
func TestValidateMatrix(t *testing.T) {
	t.Parallel()
	type P = Problem
	tests := []struct {
		rule, name string
		filename   string // "people.csv" when empty
		data       string
		cols       *Columns
		want       []P
		rows       int
		header     []string // checked when set
	}{
		// The file name.
		{rule: "name", name: "lower case", data: "email\na@b.co\n", rows: 1},
		{rule: "name", name: "upper case", filename: "People.CSV", data: "email\na@b.co\n", rows: 1},
		{rule: "name", name: "a path", filename: "uploads/ws_1/people.Csv", data: "email\na@b.co\n", rows: 1},
		{rule: "name", name: "txt", filename: "people.txt", data: "email\na@b.co\n", rows: 1,
			want: []P{{0, "", "", "the file must be a .csv file"}}},
		{rule: "name", name: "csv then more", filename: "people.csv.gz", data: "email\na@b.co\n", rows: 1,
			want: []P{{0, "", "", "the file must be a .csv file"}}},
		{rule: "name", name: "no extension", filename: "csv", data: "email\na@b.co\n", rows: 1,
			want: []P{{0, "", "", "the file must be a .csv file"}}},

		// Not empty: a header and at least one data row.
		{rule: "empty", name: "one data row", data: "email\na@b.co", rows: 1},
		{rule: "empty", name: "no bytes", data: "",
			want: []P{{0, "", "", "the file is empty; it needs a header row and at least one data row"}}},
		{rule: "empty", name: "only blank lines", data: "\n\r\n\n",
			want: []P{{0, "", "", "the file is empty; it needs a header row and at least one data row"}}},
		{rule: "empty", name: "only a BOM", data: "\xEF\xBB\xBF",
			want: []P{{0, "", "", "the file is empty; it needs a header row and at least one data row"}}},
		{rule: "empty", name: "header only", data: "email,first_name\n", header: []string{"email", "first_name"},
			want: []P{{0, "", "", "the file has a header but no data rows; add at least one row under the header"}}},
		{rule: "empty", name: "header then blank lines", data: "email\r\n\r\n\r\n",
			want: []P{{0, "", "", "the file has a header but no data rows; add at least one row under the header"}}},

		// Duplicate headers (exact, case-sensitive).
		{rule: "duplicate", name: "different case", data: "email,Email,EMAIL\na@b.co,x,y\n", rows: 1},
		{rule: "duplicate", name: "same name", data: "email,first_name,email\na@b.co,Jane,c@d.co\n", rows: 1,
			want: []P{{1, "email", "", `row 1, column "email": columns 1 and 3 are both named "email"; headers must be unique (they are case-sensitive)`}}},
		{rule: "duplicate", name: "three times", data: "email,x,x,x\na@b.co,1,2,3\n", rows: 1,
			want: []P{
				{1, "x", "", `row 1, column "x": columns 2 and 3 are both named "x"; headers must be unique (they are case-sensitive)`},
				{1, "x", "", `row 1, column "x": columns 2 and 4 are both named "x"; headers must be unique (they are case-sensitive)`},
			}},

		// Header spaces; empty header.
		{rule: "header spaces", name: "single interior space", data: "email,First Name\na@b.co,Jane\n", rows: 1},
		{rule: "header spaces", name: "leading", data: "email, first_name\na@b.co,Jane\n", rows: 1,
			want: []P{{1, " first_name", "", `row 1, column " first_name": the header starts with a space; remove leading spaces`}}},
		{rule: "header spaces", name: "trailing", data: "email ,user_id\na@b.co,u1\n", rows: 1,
			want: []P{{1, "email ", "", `row 1, column "email ": the header ends with a space; remove trailing spaces`}}},
		{rule: "header spaces", name: "repeated", data: "email,First  Name\na@b.co,Jane\n", rows: 1,
			want: []P{{1, "First  Name", "", `row 1, column "First  Name": the header has repeated spaces; use a single space between words`}}},
		{rule: "header spaces", name: "all three", data: "email,  First  Name \na@b.co,Jane\n", rows: 1,
			want: []P{
				{1, "  First  Name ", "", `row 1, column "  First  Name ": the header starts with a space; remove leading spaces`},
				{1, "  First  Name ", "", `row 1, column "  First  Name ": the header has repeated spaces; use a single space between words`},
				{1, "  First  Name ", "", `row 1, column "  First  Name ": the header ends with a space; remove trailing spaces`},
			}},
		{rule: "header spaces", name: "only spaces", data: "email,  \na@b.co,Jane\n", rows: 1,
			want: []P{{1, "  ", "", `row 1, column "  ": the header is only spaces; give the column a name`}}},
		{rule: "header empty", name: "empty", data: "email,,phone\na@b.co,x,1\n", rows: 1,
			want: []P{{1, "", "", "row 1, column 2: the header is empty; give every column a name"}}},
		{rule: "header empty", name: "quoted empty", data: "\"\"\n", header: []string{""},
			want: []P{
				{0, "", "", "the file has a header but no data rows; add at least one row under the header"},
				{1, "", "", "row 1, column 1: the header is empty; give every column a name"},
				{1, "", "", `row 1: no identifier column; the header needs at least one of "user_id", "email", "phone", "anonymous_id" (exact names, case-sensitive)`},
			}},

		// At least one identifier column, and a value in one of them on every row.
		{rule: "identifier", name: "user_id", data: "user_id,first_name\nu1,Jane\n", rows: 1},
		{rule: "identifier", name: "custom key", cols: &Columns{Identifiers: []string{"user_id", "loyalty_id"}}, data: "loyalty_id\nL-1\n", rows: 1},
		{rule: "identifier", name: "default columns", cols: &Columns{}, data: "anonymous_id\na-1\n", rows: 1},
		{rule: "identifier", name: "one of two filled", data: "email,phone\n,+1555\na@b.co,\n", rows: 2},
		{rule: "identifier", name: "none", data: "first_name\nJane\n", rows: 1,
			want: []P{{1, "", "", `row 1: no identifier column; the header needs at least one of "user_id", "email", "phone", "anonymous_id" (exact names, case-sensitive)`}}},
		{rule: "identifier", name: "wrong case", data: "Email,User_ID\na@b.co,u1\n", rows: 1,
			want: []P{{1, "", "", `row 1: no identifier column; the header needs at least one of "user_id", "email", "phone", "anonymous_id" (exact names, case-sensitive)`}}},
		{rule: "identifier", name: "default columns, email", cols: &Columns{}, data: "email\na@b.co\n", rows: 1,
			want: []P{{1, "", "", `row 1: no identifier column; the header needs at least one of "user_id", "anonymous_id" (exact names, case-sensitive)`}}},
		{rule: "identifier", name: "row without a value", data: "email,first_name,phone\na@b.co,Jane,\n,Bob,\n", rows: 2,
			want: []P{{3, "", "", `row 3: no identifier; fill at least one of the columns "email", "phone"`}}},

		// Characters in values.
		{rule: "characters", name: "every kind", data: "email,x\na@b.co,AZaz09 !@#$%^&*()_+-=[]{}:\\|.`~<>/?\n", rows: 1},
		{rule: "characters", name: "accented and sequences", data: "email,x\na@b.co,Zoë São Ñandú g͟h G͟H h̤ ẞ ɽ\n", rows: 1},
		{rule: "characters", name: "not listed", data: "email,First Name\na@b.co,x\nc@d.co,Ŕŕ\n", rows: 2,
			want: []P{
				{3, "First Name", "Ŕ", `row 3, column "First Name": character "Ŕ" (U+0154) is not allowed; ` + hint},
				{3, "First Name", "ŕ", `row 3, column "First Name": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},
		{rule: "characters", name: "once per cell, every cell", data: "email,x,y\na@b.co,ŕaŕ,ŕ\n", rows: 1,
			want: []P{
				{2, "x", "ŕ", `row 2, column "x": character "ŕ" (U+0155) is not allowed; ` + hint},
				{2, "y", "ŕ", `row 2, column "y": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},
		{rule: "characters", name: "lone combining mark", data: "email,x\na@b.co,\u0324\n", rows: 1,
			want: []P{{2, "x", "\u0324", `row 2, column "x": character "̤" (U+0324) is not allowed; ` + hint}}},
		{rule: "characters", name: "listed mark on another letter", data: "email,x\na@b.co,a\u0324\n", rows: 1,
			want: []P{{2, "x", "a\u0324", `row 2, column "x": character "a̤" (U+0061 U+0324) is not allowed; ` + hint}}},
		{rule: "characters", name: "double mark before another letter", data: "email,x\na@b.co,g\u035Fa\n", rows: 1,
			want: []P{{2, "x", "g\u035Fa", `row 2, column "x": character "g͟a" (U+0067 U+035F U+0061) is not allowed; ` + hint}}},
		{rule: "characters", name: "double mark at the end", data: "email,x\na@b.co,g\u035F\n", rows: 1,
			want: []P{{2, "x", "g\u035F", `row 2, column "x": character "g͟" (U+0067 U+035F) is not allowed; ` + hint}}},
		{rule: "characters", name: "decomposed é", data: "email,x\na@b.co,Rene\u0301\n", rows: 1,
			want: []P{{2, "x", "e\u0301", "row 2, column \"x\": character \"e\u0301\" (U+0065 U+0301) is not allowed; " + hint}}},
		{rule: "characters", name: "comma in a quoted value", data: "email,x\na@b.co,\"Doe, Jane\"\n", rows: 1,
			want: []P{{2, "x", ",", `row 2, column "x": character "," (U+002C) is not allowed; ` + hint}}},
		{rule: "characters", name: "doubled quote in a quoted value", data: "email,x\na@b.co,\"5\"\"\"\n", rows: 1,
			want: []P{{2, "x", `"`, `row 2, column "x": character "\"" (U+0022) is not allowed; ` + hint}}},
		{rule: "characters", name: "line break in a quoted value", data: "email,x\na@b.co,\"a\nb\"\nc@d.co,ŕ\n", rows: 2,
			want: []P{
				{2, "x", "\n", `row 2, column "x": character "\n" (U+000A) is not allowed; ` + hint},
				{3, "x", "ŕ", `row 3, column "x": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},
		{rule: "characters", name: "tab, no-break space, apostrophe, emoji", data: "email,x\na@b.co,\ta\u00A0b'😀\n", rows: 1,
			want: []P{
				{2, "x", "\t", `row 2, column "x": character "\t" (U+0009) is not allowed; ` + hint},
				{2, "x", "\u00A0", `row 2, column "x": character "\u00a0" (U+00A0) is not allowed; ` + hint},
				{2, "x", "'", `row 2, column "x": character "'" (U+0027) is not allowed; ` + hint},
				{2, "x", "😀", `row 2, column "x": character "😀" (U+1F600) is not allowed; ` + hint},
			}},
		{rule: "characters", name: "space with a mark", data: "email,x\na@b.co,a \u0331b\n", rows: 1,
			want: []P{{2, "x", " \u0331", `row 2, column "x": character " ̱" (U+0020 U+0331) is not allowed; ` + hint}}},
		{rule: "characters", name: "identifier value too", data: "email\nñ@b.co\nŕ@b.co\n", rows: 2,
			want: []P{{3, "email", "ŕ", `row 3, column "email": character "ŕ" (U+0155) is not allowed; ` + hint}}},

		// Characters in headers.
		{rule: "header characters", name: "accented", data: "email,Prénom,Straße\na@b.co,x,y\n", rows: 1},
		{rule: "header characters", name: "not listed", data: "email,Ŕole\na@b.co,x\n", rows: 1,
			want: []P{{1, "Ŕole", "Ŕ", `row 1, column "Ŕole": character "Ŕ" (U+0154) is not allowed; ` + hint}}},
		{rule: "header characters", name: "comma", data: "email,\"a,b\"\na@b.co,x\n", rows: 1,
			want: []P{{1, "a,b", ",", `row 1, column "a,b": character "," (U+002C) is not allowed; ` + hint}}},

		// Spaces in values.
		{rule: "value spaces", name: "single interior", data: "email,x\na@b.co,Jane Ann Doe\n", rows: 1},
		{rule: "value spaces", name: "leading", data: "email,x\na@b.co, Jane\n", rows: 1,
			want: []P{{2, "x", "", `row 2, column "x": the value starts with a space; remove leading spaces`}}},
		{rule: "value spaces", name: "trailing", data: "email,x\na@b.co ,Jane\n", rows: 1,
			want: []P{{2, "email", "", `row 2, column "email": the value ends with a space; remove trailing spaces`}}},
		{rule: "value spaces", name: "repeated", data: "email,x\na@b.co,Jane  Doe\n", rows: 1,
			want: []P{{2, "x", "", `row 2, column "x": the value has repeated spaces; use a single space between words`}}},
		{rule: "value spaces", name: "only spaces", data: "email,x\na@b.co, \n", rows: 1,
			want: []P{{2, "x", "", `row 2, column "x": the value is only spaces; leave the cell empty instead`}}},

		// UTF-8.
		{rule: "utf-8", name: "multi-byte letters", data: "email,x\na@b.co,\xc3\xa9\xe1\xb8\x8d\n", rows: 1},
		{rule: "utf-8", name: "invalid byte in a value", data: "email,x\na@b.co,caf\xe9 \xff\xe9\n", rows: 1,
			want: []P{
				{2, "x", `\xe9`, `row 2, column "x": byte \xe9 is not valid UTF-8; save the file as UTF-8`},
				{2, "x", `\xff`, `row 2, column "x": byte \xff is not valid UTF-8; save the file as UTF-8`},
			}},
		{rule: "utf-8", name: "invalid byte in a header", data: "email,Pr\xe9nom\na@b.co,x\n", rows: 1,
			want: []P{{1, "Pr\xe9nom", `\xe9`, `row 1, column "Pr\xe9nom": byte \xe9 is not valid UTF-8; save the file as UTF-8`}}},
		{rule: "utf-8", name: "truncated sequence", data: "email,x\na@b.co,\xe1\xb8\n", rows: 1,
			want: []P{
				{2, "x", `\xe1`, `row 2, column "x": byte \xe1 is not valid UTF-8; save the file as UTF-8`},
				{2, "x", `\xb8`, `row 2, column "x": byte \xb8 is not valid UTF-8; save the file as UTF-8`},
			}},

		// BOM.
		{rule: "bom", name: "stripped", data: "\xEF\xBB\xBFemail,x\na@b.co,y\n", rows: 1, header: []string{"email", "x"}},
		{rule: "bom", name: "a second one is content", data: "\xEF\xBB\xBF\xEF\xBB\xBFemail\na@b.co\n", rows: 1, header: []string{"\uFEFFemail"},
			want: []P{
				{1, "\uFEFFemail", "\uFEFF", `row 1, column "\ufeffemail": character "\ufeff" (U+FEFF) is not allowed; ` + hint},
				{1, "", "", `row 1: no identifier column; the header needs at least one of "user_id", "email", "phone", "anonymous_id" (exact names, case-sensitive)`},
			}},

		// RFC 4180: line endings, quoting, values per row.
		{rule: "rfc 4180", name: "CRLF", data: "email,x\r\na@b.co,y\r\nc@d.co,z\r\n", rows: 2},
		{rule: "rfc 4180", name: "mixed line ends, no final one", data: "email,x\r\na@b.co,y\nc@d.co,z", rows: 2},
		{rule: "rfc 4180", name: "quoted values", data: "\"email\",\"x\"\r\n\"a@b.co\",\"y z\"\r\n", rows: 1, header: []string{"email", "x"}},
		{rule: "rfc 4180", name: "empty cells", data: "email,x,y\na@b.co,,\n", rows: 1},
		{rule: "rfc 4180", name: "too few values", data: "email,x,first_name\na@b.co,y\nc@d.co,ŕ,z\n", rows: 2,
			want: []P{
				{2, "", "", "row 2: the row has 2 values but the header has 3 columns; every row needs one value per column"},
				{3, "x", "ŕ", `row 3, column "x": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},
		{rule: "rfc 4180", name: "too many values", data: "email\na@b.co,ŕ\n", rows: 1,
			want: []P{{2, "", "", "row 2: the row has 2 values but the header has 1 column; every row needs one value per column"}}},
		{rule: "rfc 4180", name: "bare quote", data: "email,x\na@b.co,5\"\nc@d.co,y\n", rows: 2,
			want: []P{{2, "x", `"`, `row 2, column "x": a quote (") inside a value that does not start with one (line 2); remove it, " is not an allowed character`}}},
		{rule: "rfc 4180", name: "text after a closing quote", data: "email,x\na@b.co,y\n\"c@d.co\"x,y\n", rows: 2,
			want: []P{{3, "email", "", `row 3, column "email": bad quoting (line 3); a quoted value must be closed by a quote followed by a comma or the end of the line`}}},
		{rule: "rfc 4180", name: "quote never closed", data: "email,x\na@b.co,\"y\nc@d.co,z\n", rows: 1,
			want: []P{{2, "x", "", `row 2, column "x": bad quoting (lines 2 to 3); a quoted value must be closed by a quote followed by a comma or the end of the line`}}},
		{rule: "rfc 4180", name: "bad quoting in the header", data: "email,\"x\"y\na@b.co\n", rows: 1, header: []string{"email"},
			want: []P{{1, "", "", `row 1: bad quoting (line 1); a quoted value must be closed by a quote followed by a comma or the end of the line`}}},
		{rule: "rfc 4180", name: "rows count as records", data: "email,x\na@b.co,\"a\r\nb\"\n\n\nc@d.co,y\nŕ@d.co,z\n", rows: 3,
			want: []P{
				{2, "x", "\n", `row 2, column "x": character "\n" (U+000A) is not allowed; ` + hint},
				{4, "email", "ŕ", `row 4, column "email": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},

		// Everything at once, in file order, file-level problems first.
		{rule: "order", name: "many", filename: "people.xlsx", data: "email,email, x\nŕ,a@b.co\n", rows: 1,
			want: []P{
				{0, "", "", "the file must be a .csv file"},
				{1, "email", "", `row 1, column "email": columns 1 and 2 are both named "email"; headers must be unique (they are case-sensitive)`},
				{1, " x", "", `row 1, column " x": the header starts with a space; remove leading spaces`},
				{2, "", "", "row 2: the row has 2 values but the header has 3 columns; every row needs one value per column"},
				{2, "email", "ŕ", `row 2, column "email": character "ŕ" (U+0155) is not allowed; ` + hint},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			filename := tc.filename
			if filename == "" {
				filename = "people.csv"
			}
			cols := testCols
			if tc.cols != nil {
				cols = *tc.cols
			}
			rep := validate(t, filename, tc.data, cols)
			if len(rep.Problems) != len(tc.want) || (len(tc.want) > 0 && !reflect.DeepEqual(rep.Problems, tc.want)) {
				t.Errorf("problems:\n%s\nwant:\n%s", dump(rep.Problems), dump(tc.want))
			}
			if rep.Total != len(tc.want) {
				t.Errorf("Total = %d, want %d", rep.Total, len(tc.want))
			}
			if rep.OK() != (len(tc.want) == 0) {
				t.Errorf("OK() = %v", rep.OK())
			}
			if rep.Rows != tc.rows {
				t.Errorf("Rows = %d, want %d", rep.Rows, tc.rows)
			}
			if tc.header != nil && !reflect.DeepEqual(rep.Header, tc.header) {
				t.Errorf("Header = %q, want %q", rep.Header, tc.header)
			}
		})
	}
}

func dump(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  {%d, %q, %q, %q}\n", p.Row, p.Column, p.Char, p.Message)
	}
	return b.String()
}

// rowsReader generates a CSV of a header and n data rows as it is read, so a test can stream a
// large file without holding it. bad, when positive, is a 0-based data row given a character
// that is not allowed.
type rowsReader struct {
	n, i, bad int
	header    bool
	buf       []byte
}

func newRowsReader(n, bad int) *rowsReader { return &rowsReader{n: n, bad: bad} }

func (g *rowsReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch {
		case !g.header:
			g.header = true
			g.buf = append(g.buf, "user_id,email,First Name\r\n"...)
		case g.i < g.n:
			name := "Jane"
			if g.i == g.bad {
				name = "ŕ"
			}
			g.buf = fmt.Appendf(g.buf, "u%d,u%d@example.com,%s\r\n", g.i, g.i, name)
			g.i++
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func TestRowLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rows     int
		bad      int
		want     []Problem
		wantRows int
	}{
		{"9,999 rows", MaxRows, -1, nil, 9999},
		{"9,999 rows, the last one checked", MaxRows, MaxRows - 1, []Problem{
			{10000, "First Name", "ŕ", `row 10000, column "First Name": character "ŕ" (U+0155) is not allowed; ` + hint}}, 9999},
		{"10,000 rows", MaxRows + 1, -1, []Problem{{0, "", "", "the file has 10,000 data rows; the limit is 9,999"}}, 10000},
		{"25,000 rows, none checked past the limit", 25000, 12000, []Problem{{0, "", "", "the file has 25,000 data rows; the limit is 9,999"}}, 25000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Validate(newRowsReader(tc.rows, tc.bad), "big.csv", testCols)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Rows != tc.wantRows || rep.Total != len(tc.want) || !reflect.DeepEqual(rep.Problems, tc.want) {
				t.Fatalf("Rows %d, Total %d, problems:\n%s\nwant Rows %d, problems:\n%s", rep.Rows, rep.Total, dump(rep.Problems), tc.wantRows, dump(tc.want))
			}
		})
	}
}

func TestRowLimitThroughPipe(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	go func() {
		w := bytes.NewBuffer(nil)
		w.WriteString("email\n")
		for i := range MaxRows + 1 {
			fmt.Fprintf(w, "u%d@example.com\n", i)
			if w.Len() > 32<<10 {
				if _, err := pw.Write(w.Bytes()); err != nil {
					return
				}
				w.Reset()
			}
		}
		_, _ = pw.Write(w.Bytes())
		pw.Close()
	}()
	rep, err := Validate(pr, "pipe.csv", testCols)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Rows != 10000 || rep.Total != 1 || rep.Problems[0].Message != "the file has 10,000 data rows; the limit is 9,999" {
		t.Fatalf("%+v", rep)
	}
}

func TestMaxProblems(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("email,x\n")
	for i := range 150 {
		fmt.Fprintf(&b, "u%d@b.co,ŕ\n", i)
	}
	rep := validate(t, "people.txt", b.String(), testCols)
	if rep.Total != 151 || len(rep.Problems) != MaxProblems || rep.Rows != 150 {
		t.Fatalf("Total %d, kept %d, Rows %d; want 151, 100, 150", rep.Total, len(rep.Problems), rep.Rows)
	}
	if rep.Problems[0] != (Problem{0, "", "", "the file must be a .csv file"}) {
		t.Fatalf("first problem %+v, want the file name", rep.Problems[0])
	}
	for i, p := range rep.Problems[1:] {
		if p.Row != i+2 || p.Char != "ŕ" {
			t.Fatalf("problem %d is %+v, want row %d", i+1, p, i+2)
		}
	}
}

// A file-level problem found at the end still comes first, ahead of 100 row problems.
func TestMaxProblemsFileLevelFirst(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("email,x\n")
	for i := range MaxRows + 1 {
		fmt.Fprintf(&b, "u%d@b.co,ŕ\n", i)
	}
	rep := validate(t, "people.csv", b.String(), testCols)
	if rep.Total != MaxRows+1 || len(rep.Problems) != MaxProblems {
		t.Fatalf("Total %d, kept %d", rep.Total, len(rep.Problems))
	}
	if rep.Problems[0].Message != "the file has 10,000 data rows; the limit is 9,999" || rep.Problems[99].Row != 100 {
		t.Fatalf("first %+v, last %+v", rep.Problems[0], rep.Problems[99])
	}
}

func TestRowTooLong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, data string }{
		{"one long value", "email,x\na@b.co,y\nc@d.co," + strings.Repeat("a", 2*maxRowBytes) + "\nz@b.co,1\n"},
		{"an unclosed quote", "email,x\na@b.co,y\nc@d.co,\"" + strings.Repeat("abc\n", maxRowBytes/2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Validate(strings.NewReader(tc.data), "people.csv", testCols)
			if err != nil {
				t.Fatal(err)
			}
			want := []Problem{{3, "", "", "row 3: the row is longer than 1 MiB; look for a quote that is opened but never closed"}}
			if !reflect.DeepEqual(rep.Problems, want) || rep.Total != 1 {
				t.Fatalf("problems:\n%s", dump(rep.Problems))
			}
		})
	}
	// Up to the limit the row is read, wherever it is: what it breaks is then the size of a
	// row (MaxRowBytes), reported at its row, and not the reading limit.
	for _, tc := range []struct {
		data string
		row  int
	}{
		{"email,x\na@b.co," + strings.Repeat("a", maxRowBytes-len("a@b.co,\n")) + "\n", 2},
		{"email,x\n" + strings.Repeat("a@b.co,y\n", 5000) + "a@b.co," + strings.Repeat("a", maxRowBytes-len("a@b.co,\n")) + "\nc@d.co,z\n", 5002},
	} {
		rep := validate(t, "people.csv", tc.data, testCols)
		if rep.Total != 2 || rep.Problems[0].Row != 0 || rep.Problems[1].Row != tc.row || rep.Problems[1].Column != "x" ||
			!strings.Contains(rep.Problems[1].Message, "the limit is 32,768 bytes per row") {
			t.Fatalf("problems:\n%s", dump(rep.Problems))
		}
	}
}

type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func TestValidateReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, data := range []string{"", "em", "email\na@b.co\nc@d", "email\na@b.co,\"x"} {
		_, err := Validate(&failingReader{strings.NewReader(data), boom}, "people.csv", testCols)
		if !errors.Is(err, boom) {
			t.Errorf("%q: err = %v, want boom", data, err)
		}
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 9999: "9,999", 10000: "10,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// Many different characters in one cell cost linear time, each reported once.
func TestManyDistinctCharacters(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("email,x\na@b.co,")
	for r := rune(0x4E00); r < 0x4E00+20000; r++ {
		b.WriteRune(r)
		b.WriteRune(r)
	}
	b.WriteString("\n")
	rep, err := Validate(strings.NewReader(b.String()), "people.csv", testCols)
	if err != nil {
		t.Fatal(err)
	}
	// 20,000 characters, and the row's 120 KB (MaxRowBytes), counted but not kept.
	if rep.Total != 20001 || len(rep.Problems) != MaxProblems || rep.Problems[99].Char != string(rune(0x4E00+99)) {
		t.Fatalf("Total %d, kept %d", rep.Total, len(rep.Problems))
	}
}
