package store

import (
	"context"
	"encoding/json"
	"errors"
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

// LoadJSON reads and decodes the JSON item at k and returns it with its version; an absent
// item gives notFound (the caller's domain error).
func LoadJSON[T any](ctx context.Context, st Store, k Key, notFound error) (T, int64, error) {
	var v T
	it, err := st.Get(ctx, k)
	if errors.Is(err, ErrNotFound) {
		return v, 0, notFound
	}
	if err != nil {
		return v, 0, fmt.Errorf("read %s: %w", k, err)
	}
	if err := json.Unmarshal(it.Data, &v); err != nil {
		return v, 0, fmt.Errorf("decode %s: %w", k, err)
	}
	return v, it.Version, nil
}

// ListJSON reads and decodes every JSON item of partition pk whose sort key starts with prefix.
func ListJSON[T any](ctx context.Context, st Store, pk, prefix string) ([]T, error) {
	return QueryJSON[T](ctx, st, pk, Page{Prefix: prefix})
}

// QueryJSON reads and decodes the JSON items of one page of partition pk.
func QueryJSON[T any](ctx context.Context, st Store, pk string, page Page) ([]T, error) {
	items, err := st.Query(ctx, pk, page)
	if err != nil {
		return nil, fmt.Errorf("list %s%s: %w", pk, page.Prefix, err)
	}
	out := make([]T, 0, len(items))
	for _, it := range items {
		var v T
		if err := json.Unmarshal(it.Data, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", it.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}
