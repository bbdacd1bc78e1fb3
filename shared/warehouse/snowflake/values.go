package snowflake

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// typeName names a result column's type as Snowflake's SQL does; the driver reports the
// result's internal type names (FIXED, REAL, TEXT, …).
func typeName(ct *sql.ColumnType) string {
	switch t := ct.DatabaseTypeName(); t {
	case "FIXED":
		if p, s, ok := ct.DecimalSize(); ok && p > 0 {
			return fmt.Sprintf("NUMBER(%d,%d)", p, s)
		}
		return "NUMBER"
	case "REAL":
		return "FLOAT"
	case "TEXT":
		return "VARCHAR"
	default:
		return t
	}
}

// plain turns a value as gosnowflake gives it for a column of internal type kind (and, for
// FIXED, scale) into a plain Go value:
//
//   - NUMBER with scale 0: int64 when it fits, else its decimal text;
//   - NUMBER with a scale, DECFLOAT: float64 when the float prints as the same number (12.50
//     is 12.5), else the decimal text (a float would change it: see number);
//   - FLOAT: float64; BOOLEAN: bool; VARCHAR and the rest: string;
//   - DATE, TIMESTAMP_*: time.Time; TIME: its "15:04:05.999999999" text;
//   - OBJECT, ARRAY, VARIANT: the JSON decoded (map[string]any, []any, string, float64, bool),
//     or the text when it is not JSON;
//   - BINARY: []byte; NULL: nil.
//
// In JSON results the driver gives most values as Snowflake's text; in Arrow results (not
// asked for, see resultFormat) as Go values, which pass through.
func plain(v any, kind string, scale int64) any {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		switch kind {
		case "FIXED":
			return number(x, scale)
		case "DECFLOAT":
			return number(x, 1)
		case "REAL":
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				return f
			}
		case "BOOLEAN":
			if b, err := strconv.ParseBool(x); err == nil {
				return b
			}
		case "OBJECT", "ARRAY", "VARIANT":
			var j any
			if err := json.Unmarshal([]byte(x), &j); err == nil {
				return j
			}
		}
		return x
	case time.Time:
		if kind == "TIME" {
			return x.Format("15:04:05.999999999")
		}
		return x
	case bool, int64, float64, []byte:
		return x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case *big.Int:
		return number(x.String(), 0)
	case *big.Float:
		return number(x.Text('f', -1), 1)
	}
	return fmt.Sprint(v)
}

// number reads a NUMBER's decimal text: with scale 0 an int64 where it fits; otherwise a
// float64 where the float prints as the same number (its shortest text, which JSON and
// strconv write, equals the decimal, trailing zeros of the fraction aside: 12.50 is 12.5, 0.1
// is 0.1); else the text as Snowflake wrote it, which a float would change.
func number(s string, scale int64) any {
	if scale == 0 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		return s
	}
	c, ok := canonicalDecimal(s)
	if !ok {
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || strconv.FormatFloat(f, 'f', -1, 64) != c {
		return s
	}
	return f
}

// canonicalDecimal writes plain decimal text ([+-]digits[.digits]) as strconv.FormatFloat(f,
// 'f', -1, 64) writes a float: no plus sign, no leading zeros before the units, no trailing
// zeros after the point, no point without a fraction ("+012.50" → "12.5", "-0.0" → "-0").
// ok is false for anything else (exponents, Inf, NaN, hex).
func canonicalDecimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	t := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" && frac == "" {
		return "", false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", false
			}
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac = strings.TrimRight(frac, "0"); frac != "" {
		out += "." + frac
	}
	if neg {
		out = "-" + out
	}
	return out, true
}
