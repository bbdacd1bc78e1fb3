package sfake

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/unifiedprofiles/up/shared/salesforce"
)

// query is the subset of SOQL the fake understands: what the sync generates and a little more.
//
//	SELECT f [, f]* FROM Object [WHERE cond [AND cond]*] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST] [, …]] [LIMIT n]
//
// cond is `field op literal`, op one of = != < <= > >=, literal a datetime (unquoted ISO 8601),
// a 'quoted string', a number, true, false or null.
type query struct {
	Fields []string
	Object string
	Where  []cond
	Order  []orderBy
	Limit  int // 0: none
}

type cond struct {
	Field string
	Op    string
	Value any // time.Time, string, float64, bool, nil
}

type orderBy struct {
	Field string
	Desc  bool
}

// soqlError is a MALFORMED_QUERY.
type soqlError struct{ msg string }

func (e *soqlError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &soqlError{msg: fmt.Sprintf(format, args...)}
}

// tokenize splits SOQL into words, commas, operators and quoted strings.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == ',' || c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '<' || c == '>' || c == '=' || c == '!':
			j := i + 1
			if j < len(s) && (s[j] == '=' || (c == '<' && s[j] == '>')) {
				j++
			}
			op := s[i:j]
			if op == "!" {
				return nil, malformed("unexpected token: '!'")
			}
			if op == "<>" {
				op = "!="
			}
			toks = append(toks, op)
			i = j
		case c == '\'':
			var b strings.Builder
			b.WriteByte('\'')
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == '\'' {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, malformed("unterminated string literal")
			}
			toks = append(toks, b.String())
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r,()<>=!'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func parseSOQL(s string) (query, error) {
	toks, err := tokenize(s)
	if err != nil {
		return query{}, err
	}
	p := &parser{toks: toks}
	var q query
	if !p.keyword("SELECT") {
		return q, malformed("unexpected token: %q, expected SELECT", p.peek())
	}
	for {
		f := p.next()
		if !salesforce.ValidName(f) || isKeyword(f) {
			return q, malformed("unexpected token: %q in the SELECT list", f)
		}
		q.Fields = append(q.Fields, f)
		if p.peek() != "," {
			break
		}
		p.next()
	}
	if !p.keyword("FROM") {
		return q, malformed("unexpected token: %q, expected FROM", p.peek())
	}
	q.Object = p.next()
	if !salesforce.ValidName(q.Object) || isKeyword(q.Object) {
		return q, malformed("unexpected token: %q after FROM", q.Object)
	}
	if p.keyword("WHERE") {
		for {
			c, err := p.cond()
			if err != nil {
				return q, err
			}
			q.Where = append(q.Where, c)
			if !p.keyword("AND") {
				break
			}
		}
	}
	if p.keyword("ORDER") {
		if !p.keyword("BY") {
			return q, malformed("unexpected token: %q, expected BY", p.peek())
		}
		for {
			f := p.next()
			if !salesforce.ValidName(f) || isKeyword(f) {
				return q, malformed("unexpected token: %q in ORDER BY", f)
			}
			o := orderBy{Field: f}
			if p.keyword("DESC") {
				o.Desc = true
			} else {
				p.keyword("ASC")
			}
			if p.keyword("NULLS") {
				if !p.keyword("FIRST") && !p.keyword("LAST") {
					return q, malformed("unexpected token: %q, expected FIRST or LAST", p.peek())
				}
			}
			q.Order = append(q.Order, o)
			if p.peek() != "," {
				break
			}
			p.next()
		}
	}
	if p.keyword("LIMIT") {
		n, err := strconv.Atoi(p.next())
		if err != nil || n < 0 || n > 50_000_000 {
			return q, malformed("LIMIT must be a non-negative integer")
		}
		q.Limit = n
	}
	if t := p.peek(); t != "" {
		return q, malformed("unexpected token: %q", t)
	}
	return q, nil
}

var keywords = map[string]bool{"SELECT": true, "FROM": true, "WHERE": true, "AND": true, "OR": true, "NOT": true,
	"ORDER": true, "BY": true, "ASC": true, "DESC": true, "NULLS": true, "FIRST": true, "LAST": true, "LIMIT": true,
	"OFFSET": true, "GROUP": true, "HAVING": true, "TRUE": true, "FALSE": true, "NULL": true}

func isKeyword(s string) bool { return keywords[strings.ToUpper(s)] }

type parser struct {
	toks []string
	i    int
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func (p *parser) keyword(k string) bool {
	if strings.EqualFold(p.peek(), k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) cond() (cond, error) {
	f := p.next()
	if !salesforce.ValidName(f) || isKeyword(f) {
		return cond{}, malformed("unexpected token: %q in WHERE", f)
	}
	op := p.next()
	switch op {
	case "=", "!=", "<", "<=", ">", ">=":
	default:
		return cond{}, malformed("unexpected token: %q, expected a comparison operator", op)
	}
	lit := p.next()
	var v any
	switch {
	case lit == "":
		return cond{}, malformed("missing value after %s", op)
	case strings.HasPrefix(lit, "'"):
		v = lit[1:]
	case strings.EqualFold(lit, "null"):
		v = nil
	case strings.EqualFold(lit, "true"), strings.EqualFold(lit, "false"):
		v = strings.EqualFold(lit, "true")
	case len(lit) >= 10 && lit[4] == '-' && strings.ContainsAny(lit, "Tt"):
		// A datetime literal: ISO 8601 with Z or an offset (SOQL rejects one without a zone).
		if !strings.HasSuffix(lit, "Z") && !strings.ContainsAny(lit[10:], "+-") {
			return cond{}, malformed("invalid date/time: %s", lit)
		}
		t, err := salesforce.ParseDatetime(lit)
		if err != nil {
			return cond{}, malformed("line 1: invalid date/time: %s", lit)
		}
		v = t
	default:
		n, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return cond{}, malformed("unexpected token: %q", lit)
		}
		v = n
	}
	return cond{Field: f, Op: op, Value: v}, nil
}

// compare returns -1, 0, 1 comparing a and b (nil sorts first), and whether they are comparable.
func compare(a, b any) (int, bool) {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0, true
		case a == nil:
			return -1, true
		}
		return 1, true
	}
	switch x := a.(type) {
	case time.Time:
		y, ok := b.(time.Time)
		if !ok {
			return 0, false
		}
		return x.Compare(y), true
	case string:
		y, ok := b.(string)
		if !ok {
			return 0, false
		}
		return strings.Compare(x, y), true
	case bool:
		y, ok := b.(bool)
		if !ok {
			return 0, false
		}
		switch {
		case x == y:
			return 0, true
		case !x:
			return -1, true
		}
		return 1, true
	}
	fx, okx := toFloat(a)
	fy, oky := toFloat(b)
	if !okx || !oky {
		return 0, false
	}
	switch {
	case fx < fy:
		return -1, true
	case fx > fy:
		return 1, true
	}
	return 0, true
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	}
	return 0, false
}

func (c cond) match(v any) bool {
	n, ok := compare(v, c.Value)
	if !ok {
		return false
	}
	if (v == nil) != (c.Value == nil) && c.Op != "!=" {
		return false // SOQL: null only equals null
	}
	switch c.Op {
	case "=":
		return n == 0
	case "!=":
		return n != 0
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return false
}
