package store

import (
	"encoding/json"
	"fmt"
)

// JSONItem returns the item at k holding v as JSON, the form the domain packages store.
// v is one of their own plain structs, so an encoding failure is a programming error.
func JSONItem(k Key, v any) Item {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T for %s: %v", v, k, err))
	}
	return Item{Key: k, Data: b}
}
