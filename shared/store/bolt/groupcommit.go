package bolt

import "go.etcd.io/bbolt"

// Group commit. bbolt has one writer at a time and each commit ends with an fsync, so
// writers must share commits. db.Batch does that by waiting a fixed delay for company and
// then queuing for the writer lock; under load its batches stay as small as the delay
// lets them be. Here one goroutine commits whatever queued while the previous commit ran:
// no fixed delay when idle, and batches that grow with the load.

// maxGroup bounds the writes of one commit (one bbolt transaction's dirty pages in memory).
const maxGroup = 1000

type pending struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// commit runs fn in a read-write transaction shared with other callers and returns once
// that transaction is durable. fn must leave the transaction untouched when it fails: a
// failing fn is dropped, and the rest of its group is run again without it.
func (s *Store) commit(fn func(*bbolt.Tx) error) error {
	p := pending{fn: fn, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, p)
	if !s.committing {
		s.committing = true
		go s.commitLoop()
	}
	s.qmu.Unlock()
	return <-p.done
}

func (s *Store) commitLoop() {
	for {
		s.qmu.Lock()
		n := min(len(s.queue), maxGroup)
		if n == 0 {
			s.committing = false
			s.qmu.Unlock()
			return
		}
		group := s.queue[:n:n]
		s.queue = s.queue[n:]
		s.qmu.Unlock()
		s.commitGroup(group)
	}
}

func (s *Store) commitGroup(group []pending) {
	for len(group) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for i, p := range group {
				if err := p.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 { // committed, or the commit itself failed: the same answer for all
			for _, p := range group {
				p.done <- err
			}
			return
		}
		group[failed].done <- err
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}
