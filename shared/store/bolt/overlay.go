package bolt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/unifiedprofiles/up/shared/store"
)

// Writes reach bbolt in two steps. A commit appends its writes to a write-ahead log (one
// write and one fdatasync: durable) and publishes them in an in-memory table that every
// read consults before bbolt. When the table is large or old enough it is frozen, a new
// log is started, and a background flush writes the frozen table into bbolt in key order,
// then drops it and its logs (the newest becomes the next spare log). Why: a bbolt commit costs two fsyncs and
// rewrites every page it touches, so one commit per group of writes made an identify wait
// for two syncs (its p95 stayed above 2 ms) and wrote about 9.5 KB per ingested event
// (BENCHMARKS.md); a log record costs one sync, and a flush writes each touched page once
// however many writes touched it. A crash loses nothing acknowledged: Open replays the logs
// left behind.

const (
	defaultFlushBytes = 3 << 20          // freeze the table past this much (4 MB: CSV peak RSS 94–96 of 100 MB)
	flushChunk        = 1 << 20          // written into bbolt per transaction
	defaultFlushAge   = 10 * time.Second // or when its first write is this old
	maxActiveFactor   = 6                // commits wait for the flush past flushBytes × this (2 stalled them 16 times a run: BENCHMARKS.md)
	logSize           = 16 << 20         // a zero-filled spare's size; a log past it is frozen
	walSuffix         = ".wal."          // logs are <store path>.wal.<sequence>
	spareSuffix       = ".wal-spare"     // the next log: zero-filled once, then a recycled one
	tickEvery         = 250 * time.Millisecond
	maxKeptRecord     = 4 << 20 // the largest record buffer kept for the next commit (a busy group of batches logs over 1 MB)
)

// WithFlushBytes sets how large the in-memory table grows before it is flushed into bbolt
// (tests flush after every commit with 1).
func WithFlushBytes(n int) Option { return func(s *Store) { s.flushBytes = n } }

// entry is one write: the item's key and its encoded value, nil for a delete.
type entry struct {
	key store.Key
	val []byte
}

// memtable holds committed writes not yet in bbolt.
type memtable struct {
	items map[string]entry               // encoded key → the write
	pks   map[string]map[string]struct{} // PK → its sort keys here, for Query
	bytes int                            // written into it, overwrites included
	since time.Time                      // when its first write came
}

// newMemtable returns an empty table sized for about n items (the last table's count:
// growing a map rehashes it).
func newMemtable(n int) *memtable {
	return &memtable{items: make(map[string]entry, n), pks: make(map[string]map[string]struct{}, n/4)}
}

func (m *memtable) set(k string, e entry) {
	if len(m.items) == 0 {
		m.since = time.Now()
	}
	m.items[k] = e
	sks := m.pks[e.key.PK]
	if sks == nil {
		sks = map[string]struct{}{}
		m.pks[e.key.PK] = sks
	}
	sks[e.key.SK] = struct{}{}
	m.bytes += len(k) + len(e.val)
}

// partition returns the writes of partition pk in the view's tables whose sort keys keep
// accepts, sorted ascending (descending when desc), the active table's over the frozen
// one's.
func (v *view) partition(pk string, keep func(sk string) bool, desc bool) []entry {
	var out []entry
	seen := map[string]bool{}
	collect := func(m *memtable) {
		for sk := range m.pks[pk] {
			if seen[sk] || !keep(sk) {
				continue
			}
			seen[sk] = true
			out = append(out, m.items[string(encodeKey(store.Key{PK: pk, SK: sk}))])
		}
	}
	v.lockActive()
	collect(v.active)
	v.unlockActive()
	if v.frozen != nil {
		collect(v.frozen)
	}
	sort.Slice(out, func(i, j int) bool {
		if desc {
			return out[i].key.SK > out[j].key.SK
		}
		return out[i].key.SK < out[j].key.SK
	})
	return out
}

// Log records: [payload length uint32][CRC-32C of the log's sequence number (8 bytes) and
// the payload, uint32][payload]; the payload a list of writes: [1 put | 2 delete][uvarint
// len PK][PK][uvarint len SK][SK], and for a put [uvarint len value][value]. The sequence
// number in the checksum means a record can only be read back from the log it was written
// to, and a zero length marks the end (a log is zero-filled before use).
var crcTable = crc32.MakeTable(crc32.Castagnoli)

func checksum(seq int, payload []byte) uint32 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	return crc32.Update(crc32.Checksum(b[:], crcTable), crcTable, payload)
}

// appendRecord appends the record of writes to dst (which the log reuses).
func appendRecord(dst []byte, seq int, writes []entry) []byte {
	n := 8
	for _, w := range writes {
		n += 1 + 3*binary.MaxVarintLen32 + len(w.key.PK) + len(w.key.SK) + len(w.val)
	}
	start := len(dst)
	b := slices.Grow(dst, n)[:start+8]
	for _, w := range writes {
		if w.val == nil {
			b = append(b, 2)
		} else {
			b = append(b, 1)
		}
		b = binary.AppendUvarint(b, uint64(len(w.key.PK)))
		b = append(b, w.key.PK...)
		b = binary.AppendUvarint(b, uint64(len(w.key.SK)))
		b = append(b, w.key.SK...)
		if w.val != nil {
			b = binary.AppendUvarint(b, uint64(len(w.val)))
			b = append(b, w.val...)
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-8))
	binary.BigEndian.PutUint32(b[start+4:], checksum(seq, b[start+8:]))
	return b
}

// errLogEnd ends the reading of a log: its zero-filled tail, its end, or a record torn by
// a crash (a commit that never finished, so was never acknowledged).
var errLogEnd = errors.New("bolt: end of log")

// readRecord reads one record of log seq.
func readRecord(r *bufio.Reader, seq int) ([]entry, error) {
	var head [8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, errLogEnd
	}
	n := binary.BigEndian.Uint32(head[0:])
	if n == 0 || n > 1<<30 {
		return nil, errLogEnd
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, errLogEnd
	}
	if checksum(seq, payload) != binary.BigEndian.Uint32(head[4:]) {
		return nil, errLogEnd
	}
	return decodeWrites(payload)
}

// decodeWrites decodes a record's payload; a checksum matched, so a payload that does not
// decode is not a torn write but a bug or a damaged disk.
func decodeWrites(p []byte) ([]entry, error) {
	var out []entry
	str := func() ([]byte, bool) {
		l, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < l {
			return nil, false
		}
		s := p[k : k+int(l)]
		p = p[k+int(l):]
		return s, true
	}
	for len(p) > 0 {
		op := p[0]
		p = p[1:]
		pk, ok1 := str()
		sk, ok2 := str()
		if !ok1 || !ok2 || (op != 1 && op != 2) {
			return nil, errors.New("bolt: log record does not decode")
		}
		e := entry{key: store.Key{PK: string(pk), SK: string(sk)}}
		if op == 1 {
			v, ok := str()
			if !ok {
				return nil, errors.New("bolt: log record does not decode")
			}
			e.val = v
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *Store) walPath(seq int) string { return s.path + walSuffix + strconv.Itoa(seq) }

// walSeqs lists the sequence numbers of the logs next to the store, oldest first.
func walSeqs(path string) ([]int, error) {
	names, err := filepath.Glob(path + walSuffix + "*")
	if err != nil {
		return nil, err
	}
	var seqs []int
	for _, n := range names {
		if seq, err := strconv.Atoi(strings.TrimPrefix(n, path+walSuffix)); err == nil {
			seqs = append(seqs, seq)
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

// recover writes the logs a crash (or a Close that could not flush) left behind into bbolt,
// oldest first, each up to its end, then removes them. It returns the next log's sequence
// number. Replaying a log already flushed (a crash between the flush and the removal)
// writes the same values again.
func (s *Store) recover() (int, error) {
	// A spare left by a crash may be a recycled log whose sequence number comes again (the
	// numbering restarts at 1 after a clean Close): its records would read back as the new
	// log's. It is never needed: drop it.
	os.Remove(s.path + spareSuffix)
	os.Remove(s.path + spareSuffix + ".tmp")
	seqs, err := walSeqs(s.path)
	if err != nil {
		return 0, err
	}
	next := 1
	for _, seq := range seqs {
		f, err := os.Open(s.walPath(seq))
		if err != nil {
			return 0, err
		}
		var writes []entry
		r := bufio.NewReaderSize(f, 1<<20)
		for {
			rec, err := readRecord(r, seq)
			if errors.Is(err, errLogEnd) {
				break
			}
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("replay %s: %w", s.walPath(seq), err)
			}
			writes = append(writes, rec...)
		}
		f.Close()
		if err := s.writeChunked(writes); err != nil {
			return 0, fmt.Errorf("replay %s: %w", s.walPath(seq), err)
		}
		if err := os.Remove(s.walPath(seq)); err != nil {
			return 0, err
		}
		next = seq + 1
	}
	return next, nil
}

// writeChunked writes writes into bbolt in order, in transactions of about flushChunk bytes:
// bbolt holds every page a transaction dirties in memory until it commits. A crash between
// them loses nothing: the logs go only after the last.
func (s *Store) writeChunked(writes []entry) error {
	for len(writes) > 0 {
		n, size := 0, 0
		for ; n < len(writes) && size < flushChunk; n++ {
			size += len(writes[n].key.PK) + len(writes[n].key.SK) + len(writes[n].val)
		}
		if err := s.db.Update(func(tx *bbolt.Tx) error { return writeEntries(tx.Bucket(itemsBucket), writes[:n]) }); err != nil {
			return err
		}
		writes = writes[n:]
	}
	return nil
}

// writeEntries applies writes to b in order (a later write of a key wins).
func writeEntries(b *bbolt.Bucket, writes []entry) error {
	for _, w := range writes {
		k := encodeKey(w.key)
		var err error
		if w.val == nil {
			err = b.Delete(k)
		} else {
			err = b.Put(k, w.val)
		}
		if err != nil {
			return fmt.Errorf("store: write %s: %w", w.key, err)
		}
	}
	return nil
}

// zeroFill makes f logSize bytes of zeros on disk, so that a record written into it later
// changes no file size or extent and its fdatasync writes the data alone: about 100 µs
// less per commit here than appending (BENCHMARKS.md). A recycled log does the same.
func zeroFill(f *os.File) error {
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < logSize; off += int64(len(zeros)) {
		if _, err := f.WriteAt(zeros, off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// spareAfter is how much a store logs before spare logs are zero-filled for it: one that
// writes little (a test's) never writes logSize of zeros.
const spareAfter = 64 << 10

// prepareSpare zero-fills the next log ahead of time, outside any lock a commit takes,
// unless one is ready. It reports whether one is ready.
func (s *Store) prepareSpare() (bool, error) {
	spare := s.path + spareSuffix
	if _, err := os.Stat(spare); err == nil {
		return true, nil
	}
	tmp := spare + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return false, err
	}
	err = zeroFill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return false, err
	}
	return true, os.Rename(tmp, spare)
}

// openWAL starts log seq in the spare (zero-filled or recycled) if one is ready, else in a
// new empty file. The directory is synced so that the log's name survives a power loss. The active table may
// span several logs: a flush removes every log up to the one its table was frozen in. The
// caller holds walMu.
func (s *Store) openWAL(seq int) error {
	path := s.walPath(seq)
	prepared := os.Rename(s.path+spareSuffix, path) == nil
	flag := os.O_RDWR
	if !prepared {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("open write-ahead log: %w", err)
	}
	if s.wal != nil {
		s.wal.Close()
	}
	s.wal, s.walSeq, s.walOff, s.walPrepared = f, seq, 0, prepared
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// appendWAL makes writes durable. The caller holds walMu.
func (s *Store) appendWAL(writes []entry) error {
	rec := appendRecord(s.walBuf[:0], s.walSeq, writes)
	if cap(rec) <= maxKeptRecord {
		s.walBuf = rec
	}
	if _, err := s.wal.WriteAt(rec, s.walOff); err != nil {
		return fmt.Errorf("store: write-ahead log: %w", err)
	}
	// A record whose sync failed is never acknowledged nor published, and the next one is
	// written over it at the same offset, so a log never holds an unacknowledged record
	// before an acknowledged one (replay stops at the first bad record).
	if err := s.syncLog(s.wal); err != nil {
		return fmt.Errorf("store: write-ahead log sync: %w", err)
	}
	s.walOff += int64(len(rec))
	s.walTotal += int64(len(rec))
	return nil
}

// keepSpare zero-fills a spare log once the store has logged spareAfter and no flushed log
// was recycled into one, and moves into it at once if the current log is a new file (a
// busy store's first log). Later spares are recycled logs (flush).
func (s *Store) keepSpare() error {
	s.walMu.Lock()
	busy, prepared := s.walTotal >= spareAfter, s.walPrepared
	s.walMu.Unlock()
	if !busy {
		return nil
	}
	s.spareMu.Lock()
	ready, err := s.prepareSpare()
	s.spareMu.Unlock()
	if err != nil || !ready || prepared {
		return err
	}
	s.walMu.Lock()
	defer s.walMu.Unlock()
	if s.walPrepared {
		return nil
	}
	return s.openWAL(s.walSeq + 1)
}

// maybeFreeze freezes the active table and starts a new log when the table is large or
// old enough or the log is full (always when force), if no flush is under way; then it
// wakes the flusher. The new log opens first: a frozen table's logs are removed once it is
// flushed, so no later write may be in them. The caller holds walMu, so no commit runs
// between the check and the swap.
func (s *Store) maybeFreeze(force bool) error {
	s.omu.RLock()
	due := force || s.active.bytes >= s.flushBytes || s.walOff >= logSize || time.Since(s.active.since) >= defaultFlushAge
	due = due && s.frozen == nil && len(s.active.items) > 0
	s.omu.RUnlock()
	if !due {
		return nil
	}
	old := s.walSeq
	if err := s.openWAL(old + 1); err != nil {
		return err
	}
	s.omu.Lock()
	s.frozen, s.active = s.active, newMemtable(len(s.active.items))
	s.frozenSeq = old // the frozen table's writes are in this log and earlier ones
	s.omu.Unlock()
	select {
	case s.flushCh <- struct{}{}:
	default:
	}
	return nil
}

// flush writes the frozen table into bbolt, in key order, then drops it and its logs.
func (s *Store) flush() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.omu.RLock()
	fz, seq := s.frozen, s.frozenSeq
	s.omu.RUnlock()
	if fz == nil {
		return nil
	}
	keys := make([]string, 0, len(fz.items))
	for k := range fz.items {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	writes := make([]entry, len(keys))
	for i, k := range keys {
		writes[i] = fz.items[k]
	}
	if err := s.writeChunked(writes); err != nil {
		return fmt.Errorf("store: flush: %w", err)
	}
	s.omu.Lock()
	s.frozen = nil
	s.omu.Unlock()
	seqs, err := walSeqs(s.path)
	if err != nil {
		return err
	}
	// The newest log the table covered becomes the spare unless one is ready: its records
	// are all in bbolt, and a log's own records are the only ones that read back in it (the
	// checksum covers the sequence number), so it needs no zeroing, and no bytes are written
	// to make it (zero-filling every log cost as much disk as the log itself: up to 10 %
	// of the batch throughput).
	s.spareMu.Lock()
	defer s.spareMu.Unlock()
	_, err = os.Stat(s.path + spareSuffix)
	recycle := err != nil
	for i := len(seqs) - 1; i >= 0; i-- {
		if q := seqs[i]; q <= seq {
			if recycle && os.Rename(s.walPath(q), s.path+spareSuffix) == nil {
				recycle = false
				continue
			}
			os.Remove(s.walPath(q))
		}
	}
	return nil
}

// background freezes old tables, flushes frozen ones (again, after a failed flush) and
// keeps a spare log ready, until stop closes. A freeze that failed (its new log could not
// be opened) is retried at the next tick and stops commits meanwhile.
func (s *Store) background() {
	defer close(s.stopped)
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-s.flushCh:
		case <-t.C:
			s.walMu.Lock()
			err := s.maybeFreeze(false)
			s.walMu.Unlock()
			if err != nil {
				s.setFlushErr(err)
				continue
			}
		}
		err := s.flush()
		s.setFlushErr(err) // nil again once a flush succeeds
		if err == nil {
			// Without a spare, commits append to a log that was not zero-filled: slower,
			// not wrong, so a failure here stops nothing.
			s.keepSpare()
		}
	}
}

func (s *Store) setFlushErr(err error) {
	s.omu.Lock()
	s.flushErr = err
	s.omu.Unlock()
}

// waitForRoom flushes in the commit's own time when the active table is far past its size
// and a flush is under way: memory stays bounded when bbolt falls behind. After a failed
// flush or log rotation commits fail (the logs keep what was acknowledged).
func (s *Store) waitForRoom() error {
	s.omu.RLock()
	over := s.frozen != nil && s.active.bytes > maxActiveFactor*s.flushBytes
	err := s.flushErr
	s.omu.RUnlock()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if over {
		return s.flush()
	}
	return nil
}

// closeOverlay stops the background work, writes everything into bbolt and removes the
// logs.
func (s *Store) closeOverlay() error {
	close(s.stop)
	<-s.stopped
	s.walMu.Lock()
	defer s.walMu.Unlock()
	for range 2 { // the frozen table, then the active one
		if err := s.flush(); err != nil {
			return err
		}
		if err := s.maybeFreeze(true); err != nil {
			return err
		}
	}
	if err := s.flush(); err != nil {
		return err
	}
	s.wal.Close()
	os.Remove(s.path + spareSuffix)
	return os.Remove(s.walPath(s.walSeq))
}

// staged collects one commit group's writes, each caller's apart until it succeeds.
type staged struct {
	group map[string]entry
	order []string // first-write order of group's keys, for the log
	fn    map[string]entry
}

// view is what a commit or a read sees: a commit's own staged writes, then its group's
// earlier ones, then the active and frozen tables as they were when the view began, then
// bbolt in a read transaction begun after that (and only if needed). Taking the tables
// first is what keeps a view from missing an acknowledged write: a frozen table leaves the
// view's sight only through bbolt, which has it by then. The active table changes under
// commits, so a read looks into it under omu; a commit holds walMu, so no other write runs,
// and looks into it freely. The frozen table no longer changes.
type view struct {
	s              *Store
	active, frozen *memtable
	w              *staged // nil for a read
	now            time.Time
	tx             *bbolt.Tx     // begun at the first read from bbolt
	bucket         *bbolt.Bucket // tx's items bucket
	cursor         *bbolt.Cursor // for lookups: one per view, not one per key (bbolt's Get allocates one)
}

func (s *Store) newView(w *staged) *view {
	s.omu.RLock()
	v := &view{s: s, active: s.active, frozen: s.frozen, w: w, now: s.now()}
	s.omu.RUnlock()
	return v
}

func (v *view) lockActive() {
	if v.w == nil {
		v.s.omu.RLock()
	}
}

func (v *view) unlockActive() {
	if v.w == nil {
		v.s.omu.RUnlock()
	}
}

// items returns bbolt's items bucket in the view's read transaction.
func (v *view) items() (*bbolt.Bucket, error) {
	if v.tx == nil {
		tx, err := v.s.db.Begin(false)
		if err != nil {
			return nil, err
		}
		v.tx, v.bucket = tx, tx.Bucket(itemsBucket)
	}
	return v.bucket, nil
}

// get returns bbolt's value at ek, nil when absent: Bucket.Get without a new cursor per key.
func (v *view) get(ek []byte) ([]byte, error) {
	if v.cursor == nil {
		b, err := v.items()
		if err != nil {
			return nil, err
		}
		v.cursor = b.Cursor()
	}
	k, val := v.cursor.Seek(ek)
	if !bytes.Equal(k, ek) {
		return nil, nil
	}
	return val, nil
}

func (v *view) close() {
	if v.tx != nil {
		v.tx.Rollback()
	}
}

// tableGet returns the newest write of ek the view holds above bbolt, if any.
func (v *view) tableGet(ek []byte) (entry, bool) {
	if v.w != nil {
		if e, ok := v.w.fn[string(ek)]; ok {
			return e, true
		}
		if e, ok := v.w.group[string(ek)]; ok {
			return e, true
		}
	}
	v.lockActive()
	e, ok := v.active.items[string(ek)]
	v.unlockActive()
	if !ok && v.frozen != nil {
		e, ok = v.frozen.items[string(ek)]
	}
	return e, ok
}

// current returns the live item at k (encoded as ek), or nil if absent or expired, with
// its data only when withData.
func (v *view) current(k store.Key, ek []byte, withData bool) (*store.Item, error) {
	var raw []byte
	if e, ok := v.tableGet(ek); ok {
		raw = e.val
	} else {
		var err error
		if raw, err = v.get(ek); err != nil {
			return nil, err
		}
	}
	if raw == nil {
		return nil, nil
	}
	decode := decodeHeader
	if withData {
		decode = decodeValue
	}
	it, err := decode(k, raw)
	if err != nil {
		return nil, err
	}
	if it.Expired(v.now) {
		return nil, nil
	}
	return &it, nil
}

func (v *view) put(k store.Key, ek, val []byte) { v.w.fn[string(ek)] = entry{key: k, val: val} }

func (v *view) delete(k store.Key, ek []byte) { v.w.fn[string(ek)] = entry{key: k} }
