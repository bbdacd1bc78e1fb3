package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Tx is one transaction of a batch (see TransactBatch).
type Tx struct {
	Ops []Op
	// Needs are earlier transactions of the same batch, by index, that must have committed
	// for this one to be tried; when one did not, this one fails with ErrSkipped.
	Needs []int
}

// ErrSkipped: a transaction of a batch was not tried because one it needs did not commit.
var ErrSkipped = errors.New("store: skipped, a transaction it needs did not commit")

// Batcher is a store that commits a batch of transactions at once (bbolt: one commit and one
// fsync for all of them).
type Batcher interface {
	TransactBatch(ctx context.Context, txs []Tx) ([]error, error)
}

// maxParallelTxs bounds the transactions of a batch in flight at once on a store without
// its own batching (DynamoDB: one request each).
const maxParallelTxs = 16

// TransactBatch applies txs, each all-or-nothing on its own as Transact would, a transaction
// never before the ones it Needs. The result has one error per transaction: nil when it
// committed, a *ConditionError, ErrSkipped, ErrInvalidTransaction or ErrContention (which
// the caller may retry), or a store failure. The second result is a failure that stopped
// the batch as a whole (nothing is known committed; a Batcher's commit failed).
func TransactBatch(ctx context.Context, st Store, txs []Tx) ([]error, error) {
	for i, tx := range txs {
		for _, n := range tx.Needs {
			if n < 0 || n >= i {
				return nil, fmt.Errorf("%w: transaction %d needs %d, which is not before it", ErrInvalidTransaction, i, n)
			}
		}
	}
	if b, ok := st.(Batcher); ok {
		return b.TransactBatch(ctx, txs)
	}
	return transactEach(ctx, st, txs), nil
}

// transactEach runs each transaction as its own Transact call, up to maxParallelTxs at once,
// each after the ones it needs.
func transactEach(ctx context.Context, st Store, txs []Tx) []error {
	errs := make([]error, len(txs))
	done := make([]chan struct{}, len(txs))
	for i := range done {
		done[i] = make(chan struct{})
	}
	sem := make(chan struct{}, maxParallelTxs)
	var wg sync.WaitGroup
	for i, tx := range txs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			for _, n := range tx.Needs {
				<-done[n]
				if errs[n] != nil {
					errs[i] = ErrSkipped
					return
				}
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = st.Transact(ctx, tx.Ops...)
		}()
	}
	wg.Wait()
	return errs
}
