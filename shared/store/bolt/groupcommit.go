package bolt

// Group commit. Each commit ends with an fsync of the write-ahead log, so writers must
// share commits. One goroutine commits whatever queued while the previous commit ran: no
// fixed delay when idle, and groups that grow with the load.

// maxGroup bounds the callers of one commit.
const maxGroup = 1000

type pending struct {
	fn   func(*view) error
	done chan error
}

// commit runs fn on a view of the store shared with other callers' fns, in order, and
// returns once their writes are durable. A failing fn's writes are dropped; the others'
// commit.
func (s *Store) commit(fn func(*view) error) error {
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

// commitGroup runs the group's fns on one view, appends their writes to the log as one
// record, and publishes them in the active table.
func (s *Store) commitGroup(group []pending) {
	s.walMu.Lock()
	defer s.walMu.Unlock()
	fail := func(err error) {
		for _, p := range group {
			p.done <- err
		}
	}
	if err := s.waitForRoom(); err != nil {
		fail(err)
		return
	}
	errs := make([]error, len(group))
	w := &staged{group: map[string]entry{}, fn: map[string]entry{}}
	v := s.newView(w)
	for i, p := range group {
		clear(w.fn)
		if errs[i] = p.fn(v); errs[i] != nil {
			continue
		}
		for k, e := range w.fn {
			if _, ok := w.group[k]; !ok {
				w.order = append(w.order, k)
			}
			w.group[k] = e
		}
	}
	v.close()
	if len(w.group) > 0 {
		writes := make([]entry, len(w.order))
		for i, k := range w.order {
			writes[i] = w.group[k]
		}
		if err := s.appendWAL(writes); err != nil {
			fail(err)
			return
		}
		s.omu.Lock()
		for _, k := range w.order {
			s.active.set(k, w.group[k])
		}
		s.omu.Unlock()
		if err := s.maybeFreeze(false); err != nil {
			s.setFlushErr(err)
		}
	}
	for i, p := range group {
		p.done <- errs[i]
	}
}
