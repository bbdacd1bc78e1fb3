package csvfile

import (
	"fmt"
	"strings"
	"testing"
)

// The limits of the identify call a row becomes, and of what a file can write into one
// profile, are validation problems that name the row, the column and the limit.
func TestSizeLimits(t *testing.T) {
	t.Parallel()
	cols := Columns{Identifiers: []string{"user_id", "email", "anonymous_id"}, MaxTraits: 300}
	big := func(n int) string { return strings.Repeat("v", n) }
	cases := []struct {
		name   string
		cols   Columns
		data   string
		want   []Problem // nil: no problem
		checks string    // in the first problem's message, when set
	}{
		{name: "299 traits", cols: cols, data: traitsRows(299, 299)},
		{name: "300 trait columns, 299 filled", cols: cols, data: traitsRows(300, 299)},
		{name: "300 traits", cols: cols, data: traitsRows(300, 300),
			want: []Problem{{Row: 3, Column: "t300", Message: `row 3: the row has 300 traits (non-empty cells other than user_id and anonymous_id); the limit is 299 traits per row, as each row is one identify call; column "t300" is the first over the limit`}}},
		{name: "anonymous_id is not a trait", cols: cols, data: "user_id,anonymous_id" + tCols(299) + "\nu1,a1" + tVals(299) + "\n"},
		{name: "email is a trait", cols: cols, data: "user_id,email" + tCols(299) + "\nu1,a@b.co" + tVals(299) + "\n",
			want: []Problem{{Row: 2, Column: "t299", Message: `row 2: the row has 300 traits (non-empty cells other than user_id and anonymous_id); the limit is 299 traits per row, as each row is one identify call; column "t299" is the first over the limit`}}},
		{name: "no trait limit when none is given", cols: Columns{Identifiers: cols.Identifiers}, data: traitsRows(400, 400)},
		{name: "row at MaxRowBytes", cols: cols, data: "user_id,note\nu1," + big(MaxRowBytes-len("user_idnoteu1")) + "\n"},
		{name: "row over MaxRowBytes", cols: cols, data: "user_id,note,x\nu1," + big(MaxRowBytes) + ",y\n",
			want: []Problem{{Row: 2, Column: "note", Message: `row 2: the row's values and their headers come to 32,783 bytes; the limit is 32,768 bytes per row (the longest value is in column "note")`}}},
		{name: "a computed trait's key as a column", cols: Columns{Identifiers: cols.Identifiers, Reserved: []string{"orders"}}, data: "user_id,orders,plan\nu1,3,pro\n",
			want: []Problem{{Row: 1, Column: "orders", Message: `row 1, column "orders": it is the key of a computed trait of this space, which a row may not set; rename the column`}}},
		{name: "columns' longest values at the limit", cols: cols, data: spreadRows(MaxProfileTraitBytes)},
		{name: "columns' longest values over the limit", cols: cols, data: spreadRows(MaxProfileTraitBytes + 1),
			want: []Problem{{Row: 0, Column: "a", Message: `the trait columns' longest values and their headers come to 131,073 bytes, and rows that update one profile could set them all; the limit is 131,072 bytes of traits per file (column "a" has the longest value, 32,000 bytes): shorten the longest values or split the columns over several files`}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rep := validate(t, "people.csv", c.data, c.cols)
			if len(c.want) == 0 {
				if !rep.OK() {
					t.Fatalf("problems:\n%s", dump(rep.Problems))
				}
				return
			}
			if rep.Total != len(c.want) || fmt.Sprint(rep.Problems) != fmt.Sprint(c.want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", dump(rep.Problems), dump(c.want))
			}
		})
	}
}

func tCols(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ",t%d", i)
	}
	return b.String()
}

func tVals(n int) string { return strings.Repeat(",x", n) }

// traitsRows is a file of user_id and columns t1…tn: row 2 fills one, row 3 fills the first filled.
func traitsRows(columns, filled int) string {
	return "user_id" + tCols(columns) + "\nu0,x" + strings.Repeat(",", columns-1) + "\nu1" + tVals(filled) + strings.Repeat(",", columns-filled) + "\n"
}

// spreadRows is a file whose rows each fill one of the columns a…e, every row within
// MaxRowBytes, the columns' longest values and headers totalling total bytes.
func spreadRows(total int) string {
	long := strings.Repeat("v", 32000)
	last := total - 4*(1+32000) - 1
	return "user_id,a,b,c,d,e\nu1," + long + ",,,,\nu1,," + long + ",,,\nu1,,," + long + ",,\nu1,,,," + long + ",\nu1,,,,," + strings.Repeat("v", last) + "\n"
}
