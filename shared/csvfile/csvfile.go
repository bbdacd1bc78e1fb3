// Package csvfile validates an uploaded CSV file of profiles and turns its rows into identify
// messages (PRODUCT.md section 4). It streams: memory stays bounded whatever the file's size
// (one row at a time, each row at most maxRowBytes), so it can run in a Lambda over an S3 object.
//
// The rules: the name ends in ".csv"; RFC 4180 (comma-separated, double quotes, CRLF or LF),
// UTF-8 with an optional BOM; a header and 1 to MaxRows data rows, each with as many values as the
// header has columns; headers unique (case-sensitive), not empty, without leading, trailing or
// repeated spaces; at least one identifier column, and a value in at least one of them in every
// row; headers and values use only the allowed characters (allowed-characters.txt, a copy of
// shared/fixtures/csv-allowed-characters.txt) and single spaces between words.
package csvfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Columns says how header names map to identifiers: the space's identifier columns
// (e.g. "user_id", "email", "phone", "anonymous_id" and custom identifier keys).
// Names match headers exactly (case-sensitive). When Identifiers is empty, "user_id" and
// "anonymous_id" are the identifier columns.
//
// MaxTraits is the limit of the identify call each row becomes: a row must carry fewer
// traits than this (its non-empty cells other than user_id and anonymous_id, which Messages
// turns into traits); 0 means no limit. The uploader passes profile.MaxTraitsPerIdentify,
// so that no row passes validation only to be refused half-way through the ingest.
//
// Reserved are trait keys a row may not set (the space's computed traits: identify refuses
// them), so a header naming one fails the file before anything is written.
type Columns struct {
	Identifiers []string
	MaxTraits   int
	Reserved    []string
}

// Problem is one rule broken, located in the file. Rows count as in a spreadsheet: the
// header is row 1, the first data row is row 2 (a row is a CSV record, which can span several
// lines when a quoted value holds a line break); row 0 is the file as a whole. Column is the
// header name ("" for file-level problems, and for problems about a whole row or an unnamed
// column), Char the offending character ("" when not about a character): a letter with its
// combining marks, or for a byte that is not UTF-8 its hex form such as `\xff`.
type Problem struct {
	Row     int    `json:"row"`
	Column  string `json:"column"`
	Char    string `json:"char,omitempty"`
	Message string `json:"message"`
}

// Report is what validation found.
type Report struct {
	Header   []string  // as written, BOM stripped
	Rows     int       // data rows
	Problems []Problem // the first MaxProblems, in file order
	Total    int       // all problems found
}

// OK reports whether the file broke no rule.
func (r Report) OK() bool { return r.Total == 0 }

// MaxProblems is how many problems a Report keeps; Total counts the rest.
const MaxProblems = 100

// MaxRows is the most data rows a file may have.
const MaxRows = 9999 // fewer than 10,000 data rows

// Size limits of what one file writes, checked before anything is written: the stores hold
// one DynamoDB item at most 400 KB, and a row that only failed when its item was written
// would leave the rows before it applied.
const (
	// MaxRowBytes bounds one data row: its non-empty values plus their headers (the row is
	// stored as it was sent, with its event). It is the tracking API's limit for one message.
	MaxRowBytes = 32 << 10
	// MaxProfileTraitBytes bounds what one file can write into one profile: for each trait
	// column its header plus its longest value (rows that land on one profile can together
	// set every column, each to its longest value).
	MaxProfileTraitBytes = 128 << 10
)

// maxRowBytes bounds one row (header or data row) so that memory stays bounded even for a file
// with no line break or a quote that is never closed. A row up to maxRowBytes is always read; the
// reading stops somewhere before maxRowBytes + 2*readBuffer (the reader reads ahead).
const (
	maxRowBytes = 1 << 20
	readBuffer  = 16 << 10
)

// allowedHint ends every message about a character that is not allowed.
const allowedHint = "use English letters, digits, the listed accented letters and !@#$%^&*()_+-=[]{}:\\|.`~<>/?"

// defaultIdentifiers are the identifier columns when Columns names none: the two that every
// identify message can carry.
var defaultIdentifiers = []string{"user_id", "anonymous_id"}

func (c Columns) identifiers() []string {
	if len(c.Identifiers) == 0 {
		return defaultIdentifiers
	}
	return c.Identifiers
}

// Validate reads the whole file once, streaming (bounded memory whatever the file size: never
// hold all rows), and checks every rule of PRODUCT.md section 4 (see the package comment).
// filename must end in ".csv" (case-insensitive).
//
// Problems are collected all through the file; after MaxRows data rows the rows are only
// counted. A row longer than 1 MiB (a little more is sometimes read) ends the reading with a
// problem: it is almost always a quote that is never closed. The error is only for a failure to
// read r; the report then holds what was found before it.
func Validate(r io.Reader, filename string, cols Columns) (Report, error) {
	v := validator{identifiers: cols.identifiers(), maxTraits: cols.MaxTraits, reserved: cols.Reserved}
	if !strings.HasSuffix(strings.ToLower(filename), ".csv") {
		v.fileProblem("the file must be a .csv file")
	}
	cr, lim, err := newReader(r)
	if err != nil {
		return v.report(), err
	}
	var perr *csv.ParseError // out of the loop: errors.As makes it escape
	for row := 1; ; row++ {
		rec, err := cr.Read()
		lim.n = 0
		if err == io.EOF {
			break
		}
		perr = nil
		tooLong := false
		if err != nil {
			switch {
			case errors.As(err, &perr):
			case errors.Is(err, errRowTooLong):
				tooLong = true
			default:
				return v.report(), err
			}
		}
		if row == 1 {
			v.checkHeader(rec, perr)
			cr.FieldsPerRecord = fieldsPerRecord(v.header)
		} else {
			v.rows++
			if v.rows <= MaxRows && !tooLong {
				v.checkRow(row, rec, perr)
			}
		}
		if tooLong {
			v.add(row, "", "", fmt.Sprintf("row %d: the row is longer than 1 MiB; look for a quote that is opened but never closed", row))
			break
		}
	}
	v.checkProfileBytes()
	switch {
	case v.header == nil:
		v.fileProblem("the file is empty; it needs a header row and at least one data row")
	case v.rows == 0:
		v.fileProblem("the file has a header but no data rows; add at least one row under the header")
	case v.rows > MaxRows:
		v.fileProblem(fmt.Sprintf("the file has %s data rows; the limit is %s", thousands(v.rows), thousands(MaxRows)))
	}
	return v.report(), nil
}

// validator collects the problems of one file.
type validator struct {
	identifiers []string
	header      []string
	idCols      []int // indexes of the identifier columns in header
	maxTraits   int   // Columns.MaxTraits
	reserved    []string
	longest     []int // per column, the longest value seen
	rows        int
	file        []Problem // row 0, found at any time, reported first
	problems    []Problem // rows 1 and on, in file order, at most MaxProblems
	total       int
}

func (v *validator) fileProblem(msg string) {
	v.total++
	v.file = append(v.file, Problem{Message: msg})
}

func (v *validator) add(row int, col, char, msg string) {
	v.total++
	if len(v.problems) < MaxProblems {
		v.problems = append(v.problems, Problem{Row: row, Column: col, Char: char, Message: msg})
	}
}

// full reports whether no more problems are kept, so messages need not be formatted.
func (v *validator) full() bool { return len(v.file)+len(v.problems) >= MaxProblems }

func (v *validator) report() Report {
	ps := append(v.file, v.problems...)
	if len(ps) > MaxProblems {
		ps = ps[:MaxProblems]
	}
	return Report{Header: v.header, Rows: v.rows, Problems: ps, Total: v.total}
}

func (v *validator) checkHeader(rec []string, perr *csv.ParseError) {
	v.header = slices.Clone(rec)
	if v.header == nil {
		v.header = []string{}
	}
	if perr != nil {
		v.parseProblem(1, rec, perr)
	}
	first := make(map[string]int, len(v.header))
	for i, h := range v.header {
		if h == "" {
			v.add(1, "", "", fmt.Sprintf("row 1, column %d: the header is empty; give every column a name", i+1))
			continue
		}
		v.checkText(1, h, h, "header")
		if slices.Contains(v.reserved, h) {
			v.add(1, h, "", fmt.Sprintf("row 1, column %q: it is the key of a computed trait of this space, which a row may not set; rename the column", h))
		}
		if j, dup := first[h]; dup {
			v.add(1, h, "", fmt.Sprintf("row 1, column %q: columns %d and %d are both named %q; headers must be unique (they are case-sensitive)", h, j+1, i+1, h))
		} else {
			first[h] = i
		}
	}
	for i, h := range v.header {
		if slices.Contains(v.identifiers, h) {
			v.idCols = append(v.idCols, i)
		}
	}
	if len(v.idCols) == 0 {
		v.add(1, "", "", fmt.Sprintf("row 1: no identifier column; the header needs at least one of %s (exact names, case-sensitive)", quoteList(v.identifiers)))
	}
}

func (v *validator) checkRow(row int, rec []string, perr *csv.ParseError) {
	if perr != nil {
		v.parseProblem(row, rec, perr)
		if !errors.Is(perr.Err, csv.ErrFieldCount) {
			return // the values were not all read
		}
	}
	for i, s := range rec {
		if i < len(v.header) {
			v.checkText(row, v.header[i], s, "value")
		}
	}
	if perr != nil {
		return
	}
	v.checkSize(row, rec)
	if len(v.idCols) == 0 {
		return
	}
	for _, i := range v.idCols {
		if rec[i] != "" {
			return
		}
	}
	names := make([]string, len(v.idCols))
	for k, i := range v.idCols {
		names[k] = v.header[i]
	}
	v.add(row, "", "", fmt.Sprintf("row %d: no identifier; fill at least one of the columns %s", row, quoteList(names)))
}

// isTrait reports whether a column's values become traits (Messages reads user_id and
// anonymous_id into the message's ids; every other column, identifier columns such as email
// included, is a trait).
func isTrait(header string) bool { return header != "user_id" && header != "anonymous_id" }

// checkSize checks a complete row against the limits of the identify call it becomes: the
// number of traits and the bytes of the row; it also keeps each column's longest value for
// checkProfileBytes.
func (v *validator) checkSize(row int, rec []string) {
	if v.longest == nil {
		v.longest = make([]int, len(v.header))
	}
	traits, bytes, widest := 0, 0, -1
	for i, s := range rec {
		if s == "" {
			continue
		}
		if isTrait(v.header[i]) {
			traits++
			if traits == v.maxTraits {
				v.add(row, v.header[i], "", fmt.Sprintf("row %d: the row has %s traits (non-empty cells other than user_id and anonymous_id); the limit is %s traits per row, as each row is one identify call; column %q is the first over the limit",
					row, thousands(v.countTraits(rec)), thousands(v.maxTraits-1), v.header[i]))
			}
			v.longest[i] = max(v.longest[i], len(s))
		}
		bytes += len(v.header[i]) + len(s)
		if widest < 0 || len(s) > len(rec[widest]) {
			widest = i
		}
	}
	if bytes > MaxRowBytes {
		v.add(row, v.header[widest], "", fmt.Sprintf("row %d: the row's values and their headers come to %s bytes; the limit is %s bytes per row (the longest value is in column %q)",
			row, thousands(bytes), thousands(MaxRowBytes), v.header[widest]))
	}
}

// countTraits returns how many traits rec carries.
func (v *validator) countTraits(rec []string) int {
	n := 0
	for i, s := range rec {
		if s != "" && isTrait(v.header[i]) {
			n++
		}
	}
	return n
}

// checkProfileBytes checks that the traits the file can write into one profile fit
// MaxProfileTraitBytes: rows that resolve to one profile (through any of their identifiers,
// or the profile's own merges) may together set every column to its longest value.
func (v *validator) checkProfileBytes() {
	total, widest := 0, -1
	for i, n := range v.longest {
		if n == 0 {
			continue
		}
		total += len(v.header[i]) + n
		if widest < 0 || n > v.longest[widest] {
			widest = i
		}
	}
	if total <= MaxProfileTraitBytes {
		return
	}
	v.total++
	v.file = append(v.file, Problem{Column: v.header[widest], Message: fmt.Sprintf(
		"the trait columns' longest values and their headers come to %s bytes, and rows that update one profile could set them all; the limit is %s bytes of traits per file (column %q has the longest value, %s bytes): shorten the longest values or split the columns over several files",
		thousands(total), thousands(MaxProfileTraitBytes), v.header[widest], thousands(v.longest[widest]))})
}

// parseProblem records a CSV syntax error; rec holds the values read before it.
func (v *validator) parseProblem(row int, rec []string, perr *csv.ParseError) {
	if errors.Is(perr.Err, csv.ErrFieldCount) {
		v.add(row, "", "", fmt.Sprintf("row %d: the row has %s but the header has %s; every row needs one value per column", row, count(len(rec), "value"), count(len(v.header), "column")))
		return
	}
	col, where := "", fmt.Sprintf("row %d", row)
	if row > 1 && len(rec) < len(v.header) {
		col = v.header[len(rec)]
		where = fmt.Sprintf("row %d, column %q", row, col)
	}
	if errors.Is(perr.Err, csv.ErrBareQuote) {
		v.add(row, col, `"`, fmt.Sprintf(`%s: a quote (") inside a value that does not start with one (line %d); remove it, " is not an allowed character`, where, perr.Line))
		return
	}
	lines := fmt.Sprintf("line %d", perr.Line)
	if perr.StartLine != perr.Line {
		lines = fmt.Sprintf("lines %d to %d", perr.StartLine, perr.Line)
	}
	v.add(row, col, "", fmt.Sprintf(`%s: bad quoting (%s); a quoted value must be closed by a quote followed by a comma or the end of the line`, where, lines))
}

// checkText checks a header (what = "header") or a non-empty value (what = "value") for spaces
// and characters. A character that is not allowed is reported once per cell.
func (v *validator) checkText(row int, col, s, what string) {
	if s == "" {
		return
	}
	if strings.IndexByte(s, ' ') >= 0 {
		v.checkSpaces(row, col, s, what)
	}
	var seen map[string]bool // the characters already reported in this cell
	for i := 0; i < len(s); {
		if fastOK[s[i]] && (i+1 == len(s) || s[i+1] < utf8.RuneSelf) {
			i++ // the common case: an allowed ASCII character that no combining mark follows
			continue
		}
		n, invalid := nextUnit(s[i:])
		u := s[i : i+n]
		i += n
		if !invalid && (u == " " || allowed(u)) || seen[u] {
			continue
		}
		if seen == nil {
			seen = make(map[string]bool)
		}
		seen[u] = true
		if v.full() {
			v.total++
			continue
		}
		if invalid {
			hex := fmt.Sprintf(`\x%02x`, u[0])
			v.add(row, col, hex, fmt.Sprintf("row %d, column %q: byte %s is not valid UTF-8; save the file as UTF-8", row, col, hex))
			continue
		}
		v.add(row, col, u, fmt.Sprintf("row %d, column %q: character %q (%s) is not allowed; %s", row, col, u, codePoints(u), allowedHint))
	}
}

func (v *validator) checkSpaces(row int, col, s, what string) {
	trimmed := strings.Trim(s, " ")
	if trimmed == s && !strings.Contains(s, "  ") {
		return // single interior spaces only
	}
	at := fmt.Sprintf("row %d, column %q: the %s", row, col, what)
	if trimmed == "" {
		if what == "header" {
			v.add(row, col, "", at+" is only spaces; give the column a name")
		} else {
			v.add(row, col, "", at+" is only spaces; leave the cell empty instead")
		}
		return
	}
	if s[0] == ' ' {
		v.add(row, col, "", at+" starts with a space; remove leading spaces")
	}
	if strings.Contains(trimmed, "  ") {
		v.add(row, col, "", at+" has repeated spaces; use a single space between words")
	}
	if s[len(s)-1] == ' ' {
		v.add(row, col, "", at+" ends with a space; remove trailing spaces")
	}
}

// codePoints returns "U+0067 U+035F U+0061" for "g͟a".
func codePoints(u string) string {
	var b strings.Builder
	for _, r := range u {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "U+%04X", r)
	}
	return b.String()
}

// count returns "1 value", "3 values".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// quoteList returns `"a", "b", "c"`.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// thousands returns n with comma separators: 10000 → "10,000".
func thousands(n int) string {
	if n < 0 {
		return "-" + thousands(-n)
	}
	s := strconv.Itoa(n)
	var b []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// fieldsPerRecord is the csv.Reader setting for a header: its length, or -1 (no check) when a
// broken header has no complete field (0 would take the next row's length).
func fieldsPerRecord(header []string) int {
	if len(header) == 0 {
		return -1
	}
	return len(header)
}

var (
	bom           = []byte{0xEF, 0xBB, 0xBF}
	errRowTooLong = errors.New("csvfile: row too long")
)

// rowLimiter fails a read once more than maxRowBytes + readBuffer bytes were read since n was
// last reset (after every record), so csv.Reader never buffers much more than one row. Bytes
// read ahead count towards the row being read when they are read, hence the readBuffer slack.
type rowLimiter struct {
	r io.Reader
	n int
}

func (l *rowLimiter) Read(p []byte) (int, error) {
	const limit = maxRowBytes + readBuffer
	if l.n >= limit {
		return 0, errRowTooLong
	}
	if room := limit - l.n; len(p) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

// newReader returns a csv.Reader over r with the BOM skipped: RFC 4180, strict quotes, records
// reused. Reset the limiter's n after every Read.
func newReader(r io.Reader) (*csv.Reader, *rowLimiter, error) {
	lim := &rowLimiter{r: r}
	br := bufio.NewReaderSize(lim, readBuffer)
	head, err := br.Peek(len(bom))
	if err != nil && err != io.EOF {
		return nil, nil, err
	}
	if bytes.Equal(head, bom) {
		if _, err := br.Discard(len(bom)); err != nil {
			return nil, nil, err
		}
	}
	cr := csv.NewReader(br)
	cr.LazyQuotes = false
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0 // set by the header: every row must have as many values
	return cr, lim, nil
}
