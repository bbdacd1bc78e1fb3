package csvfile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/unifiedprofiles/up/shared/jsonappend"
	"github.com/unifiedprofiles/up/shared/message"
)

// Messages streams a file that validated, calling fn with each data row as an identify
// message, in order, starting at data row index from (0 = first data row; used to resume after
// a crash). Row i gets MessageID uploadID + "-" + strconv.Itoa(i) (i 0-based data row index) so
// a re-run cannot double-apply; Timestamp and ReceivedAt = at; the "user_id" column → UserID,
// "anonymous_id" → AnonymousID, every other non-empty cell → Traits[header] (header case kept:
// "First Name" and "first name" are two traits; identifier columns like email/phone/custom keys
// also go into Traits, where identity extraction finds them); empty cells are ignored; Raw = the
// row as a JSON object {header: value} of its non-empty cells, in column order. fn returning an
// error stops Messages and returns it. A file that breaks the CSV syntax, or a read failure,
// also stops it with an error; Messages does not check the other rules (run Validate first).
func Messages(r io.Reader, uploadID string, at time.Time, from int, fn func(i int, m message.Message) error) error {
	cr, lim, err := newReader(r)
	if err != nil {
		return err
	}
	header, err := cr.Read()
	lim.n = 0
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("csvfile: header: %w", err)
	}
	header = slices.Clone(header) // the reader reuses its record
	cr.FieldsPerRecord = fieldsPerRecord(header)
	var raw []byte
	for i := 0; ; i++ {
		rec, err := cr.Read()
		lim.n = 0
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("csvfile: data row %d: %w", i, err)
		}
		if i < from {
			continue
		}
		m := message.Message{
			Type:       message.Identify,
			MessageID:  uploadID + "-" + strconv.Itoa(i),
			Traits:     make(map[string]any, len(rec)),
			Timestamp:  at,
			ReceivedAt: at,
		}
		raw = append(raw[:0], '{')
		for j, v := range rec {
			if v == "" {
				continue
			}
			switch h := header[j]; h {
			case "user_id":
				m.UserID = v
			case "anonymous_id":
				m.AnonymousID = v
			default:
				m.Traits[h] = v
			}
			if len(raw) > 1 {
				raw = append(raw, ',')
			}
			raw = jsonappend.StringKeepHTML(raw, header[j])
			raw = append(raw, ':')
			raw = jsonappend.StringKeepHTML(raw, v)
		}
		raw = append(raw, '}')
		m.Raw = json.RawMessage(bytes.Clone(raw))
		if err := fn(i, m); err != nil {
			return err
		}
	}
}

// Template returns a CSV template: a header with the identifier columns then a sample
// custom-trait column "first_name", and one example row. With no identifier columns it uses
// "user_id" and "anonymous_id"; a repeated name is written once.
func Template(cols Columns) []byte {
	var header, row []string
	for _, c := range cols.identifiers() {
		if !slices.Contains(header, c) {
			header = append(header, c)
			row = append(row, sampleValue(c))
		}
	}
	if !slices.Contains(header, "first_name") {
		header = append(header, "first_name")
		row = append(row, "Jane")
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	_ = w.Write(header) // writes to a bytes.Buffer cannot fail
	_ = w.Write(row)
	w.Flush()
	return b.Bytes()
}

// sampleValue is the template's example value for an identifier column.
func sampleValue(col string) string {
	switch col {
	case "user_id":
		return "user-1001"
	case "email":
		return "jane.doe@example.com"
	case "phone":
		return "+14155550100"
	case "anonymous_id":
		return "anon-7f3a9c"
	case "first_name":
		return "Jane"
	}
	return col + "-1001"
}
