// Package fieldstats counts the identifiers and traits that data carried: how many messages
// (or CSV rows) carried each identifier type and each trait key. Step 3 of the guided setup
// shows these counts. The package is a leaf, so the ingest domains (tracking, upload) can
// produce the counts and the API merge them without importing each other.
package fieldstats

// Fields counts, per identifier type and per trait key, the messages or rows that carried it.
// A message counts once per type or key, however many values it had of it. The zero value is
// ready to use; New gives maps that marshal as {} rather than null.
type Fields struct {
	Identifiers map[string]int `json:"identifiers"`
	Traits      map[string]int `json:"traits"`
}

// New returns empty counts.
func New() Fields {
	return Fields{Identifiers: map[string]int{}, Traits: map[string]int{}}
}

// AddIdentifier counts n more messages that carried identifier type typ.
func (f *Fields) AddIdentifier(typ string, n int) { f.Identifiers = add(f.Identifiers, typ, n) }

// AddTrait counts n more messages that carried trait key.
func (f *Fields) AddTrait(key string, n int) { f.Traits = add(f.Traits, key, n) }

// Merge adds o's counts to f (o's messages are others than f's: counts are summed).
func (f *Fields) Merge(o Fields) {
	for k, n := range o.Identifiers {
		f.AddIdentifier(k, n)
	}
	for k, n := range o.Traits {
		f.AddTrait(k, n)
	}
}

// add adds n to m[k], making m when it is nil; a count of 0 or less records nothing, so the
// maps only ever hold what was seen.
func add(m map[string]int, k string, n int) map[string]int {
	if n <= 0 {
		return m
	}
	if m == nil {
		m = map[string]int{}
	}
	m[k] += n
	return m
}
