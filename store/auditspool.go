package store

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// ErrSpoolFull is returned when the audit spool has no room left: the
// event is neither in the store nor on this node's disk.
var ErrSpoolFull = errors.New("store: the audit spool is full")

// DefaultSpoolMax bounds an audit spool when its size is not set.
const DefaultSpoolMax = 64 << 20

// Unavailable reports whether err is the store failing to answer (a
// connection refused or closed, a timeout) rather than the store refusing
// the record (ErrInvalid, ErrConflict, ...). An event whose append failed
// for such a reason is kept in the spool and appended later.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	for _, refusal := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrUsed, ErrExpired, ErrClosed} {
		if errors.Is(err, refusal) {
			return false
		}
	}
	// The database answered and refused the statement for what it holds
	// (PostgreSQL: a NUL byte in text, a value too long): trying again
	// will not change that, and spooling it would hold every later event
	// back behind it. PostgreSQL's errors carry an SQLSTATE; only its
	// connection, resource, operator and transaction-rollback classes
	// are the server not answering for now.
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) && len(pg.SQLState()) == 5 {
		switch pg.SQLState()[:2] {
		case "08", "40", "53", "57", "58":
			return true
		}
		return false
	}
	// SQLite's (modernc) errors carry the result code: a constraint, a
	// value too big or of the wrong type is a refusal.
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case 18, 19, 20: // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH
			return false
		}
	}
	return true
}

// AuditSpool is a node-local, append-only file of audit events that could
// not be appended to the store yet. The AuditBatcher that owns it is its
// only user (it is not safe for concurrent use).
//
// The file is a sequence of records, each
//
//	length  uint32 big endian: bytes of payload
//	crc     uint32 big endian: CRC-32C of kind and payload
//	kind    byte: 1 an event (payload: JSON), 2 a flush mark
//	payload
//
// A flush mark's payload is the 8-byte offset of the first record not yet
// appended to the store: the events before it were appended. Every write
// is synced before it is reported done. On open, a record that is cut
// short or fails its checksum (a write torn by a crash) ends the file: it
// and anything after it are dropped and the file truncated there.
type AuditSpool struct {
	f       *os.File
	path    string
	max     int64
	size    int64 // bytes in the file
	pending []spooled
	log     *slog.Logger
}

type spooled struct {
	e   AuditEvent
	off int64 // where the record starts
}

const (
	spoolHeader = 9
	kindEvent   = 1
	kindMark    = 2
	// maxSpoolRecord bounds one record, so a corrupt length cannot make
	// the reader allocate gigabytes.
	maxSpoolRecord = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenAuditSpool opens (creating it if needed, mode 0600) the spool at
// path, holding at most max bytes (0: DefaultSpoolMax), and reads the
// events it still holds.
func OpenAuditSpool(path string, max int64, logger *slog.Logger) (*AuditSpool, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: the audit spool needs a path", ErrInvalid)
	}
	if max <= 0 {
		max = DefaultSpoolMax
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Its folder may not exist yet (data_dir with PostgreSQL, where no
	// database file made it).
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: audit spool: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: audit spool: %w", err)
	}
	if err := lockSpool(f); err != nil {
		f.Close()
		return nil, err
	}
	s := &AuditSpool{f: f, path: path, max: max, log: logger}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load reads the file, drops a torn tail and keeps the unflushed events.
func (s *AuditSpool) load() error {
	info, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("store: audit spool: %w", err)
	}
	r := bufio.NewReader(io.NewSectionReader(s.f, 0, info.Size()))
	var (
		off, head int64
		events    []spooled
		problem   string
	)
	for {
		kind, payload, n, err := readRecord(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			problem = err.Error()
			break
		}
		switch kind {
		case kindEvent:
			var e AuditEvent
			if err := json.Unmarshal(payload, &e); err != nil {
				problem = "an event that does not decode: " + err.Error()
				break
			}
			events = append(events, spooled{e: e, off: off})
		case kindMark:
			if len(payload) != 8 {
				problem = "a flush mark of the wrong size"
				break
			}
			head = int64(binary.BigEndian.Uint64(payload))
		default:
			problem = fmt.Sprintf("a record of unknown kind %d", kind)
		}
		if problem != "" {
			break
		}
		off += n
	}
	if off < info.Size() {
		// Nothing after a bad record can be trusted to start a record.
		s.log.Error("audit spool: dropping a damaged tail (a write torn by a crash?)", "path", s.path,
			"offset", off, "bytes", info.Size()-off, "problem", problem)
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("store: audit spool: truncating a damaged tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("store: audit spool: %w", err)
		}
	}
	s.size = off
	for _, sp := range events {
		if sp.off >= head {
			s.pending = append(s.pending, sp)
		}
	}
	if len(s.pending) == 0 && s.size > 0 {
		return s.reset()
	}
	if len(s.pending) > 0 {
		s.log.Warn("audit spool holds events not yet in the store; they are appended when it answers", "path", s.path, "events", len(s.pending))
	}
	return nil
}

// readRecord reads one record; n is its size on disk.
func readRecord(r io.Reader) (kind byte, payload []byte, n int64, err error) {
	var h [spoolHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return 0, nil, 0, io.EOF
		}
		return 0, nil, 0, errors.New("a record header cut short")
	}
	size := binary.BigEndian.Uint32(h[0:4])
	if size > maxSpoolRecord {
		return 0, nil, 0, fmt.Errorf("a record length of %d bytes", size)
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, 0, errors.New("a record cut short")
	}
	kind = h[8]
	if crc := crc32.Update(crc32.Checksum([]byte{kind}, castagnoli), castagnoli, payload); crc != binary.BigEndian.Uint32(h[4:8]) {
		return 0, nil, 0, errors.New("a record that fails its checksum")
	}
	return kind, payload, spoolHeader + int64(size), nil
}

func appendRecord(buf []byte, kind byte, payload []byte) []byte {
	var h [spoolHeader]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[4:8], crc32.Update(crc32.Checksum([]byte{kind}, castagnoli), castagnoli, payload))
	h[8] = kind
	return append(append(buf, h[:]...), payload...)
}

// Len is the number of events waiting for the store.
func (s *AuditSpool) Len() int { return len(s.pending) }

// Path is where the spool lives.
func (s *AuditSpool) Path() string { return s.path }

// add appends events and syncs the file: when it returns nil they survive
// a crash of the node. It adds all or none.
func (s *AuditSpool) add(events []AuditEvent) error {
	var buf []byte
	offs := make([]int64, len(events))
	for i, e := range events {
		e.Seq, e.PrevHash, e.Hash = 0, nil, nil
		payload, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("store: audit spool: %w", err)
		}
		if len(payload) > maxSpoolRecord {
			return fmt.Errorf("%w: an audit event of %d bytes", ErrInvalid, len(payload))
		}
		offs[i] = s.size + int64(len(buf))
		buf = appendRecord(buf, kindEvent, payload)
	}
	if s.size+int64(len(buf))+spoolHeader+8 > s.max && len(s.pending) > 0 && s.pending[0].off > 0 {
		// Room taken by events already flushed: rewrite without them.
		if err := s.compact(); err != nil {
			return err
		}
		for i := range offs {
			offs[i] = s.size + (offs[i] - offs[0])
		}
	}
	// Keep room for the flush mark that will follow.
	if s.size+int64(len(buf))+spoolHeader+8 > s.max {
		return fmt.Errorf("%w (%d bytes at %s)", ErrSpoolFull, s.size, s.path)
	}
	if err := s.write(buf); err != nil {
		return err
	}
	for i, e := range events {
		s.pending = append(s.pending, spooled{e: e, off: offs[i]})
	}
	return nil
}

// write appends buf at the end and syncs. A failed write is cut off again
// so the file never holds half a record followed by good ones.
func (s *AuditSpool) write(buf []byte) error {
	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("store: audit spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		_ = s.f.Truncate(s.size)
		return fmt.Errorf("store: audit spool: %w", err)
	}
	s.size += int64(len(buf))
	return nil
}

// peek returns up to n events in order, oldest first.
func (s *AuditSpool) peek(n int) []AuditEvent {
	n = min(n, len(s.pending))
	out := make([]AuditEvent, n)
	for i := range n {
		out[i] = s.pending[i].e
	}
	return out
}

// ack records that the n oldest events are in the store. When none is left
// the file is emptied.
func (s *AuditSpool) ack(n int) error {
	n = min(n, len(s.pending))
	if n == len(s.pending) {
		s.pending = s.pending[:0]
		return s.reset()
	}
	var mark [8]byte
	binary.BigEndian.PutUint64(mark[:], uint64(s.pending[n].off))
	// A mark needs no room check: add kept room for one, and a mark
	// written over the bound is better than events appended twice.
	if err := s.write(appendRecord(nil, kindMark, mark[:])); err != nil {
		return err
	}
	s.pending = s.pending[n:]
	return nil
}

// reset empties the file.
func (s *AuditSpool) reset() error {
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("store: audit spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("store: audit spool: %w", err)
	}
	s.size = 0
	return nil
}

// compact rewrites the file with the pending events only: a new file,
// synced, renamed over the old one.
func (s *AuditSpool) compact() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: audit spool: %w", err)
	}
	var buf []byte
	next := make([]spooled, len(s.pending))
	for i, sp := range s.pending {
		payload, err := json.Marshal(sp.e)
		if err != nil {
			f.Close()
			return fmt.Errorf("store: audit spool: %w", err)
		}
		next[i] = spooled{e: sp.e, off: int64(len(buf))}
		buf = appendRecord(buf, kindEvent, payload)
	}
	if _, err := f.Write(buf); err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("store: audit spool: compacting: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("store: audit spool: compacting: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.f.Close()
	s.f, s.size, s.pending = f, int64(len(buf)), next
	return nil
}

// Close closes the file; what it holds is appended after the next open.
func (s *AuditSpool) Close() error { return s.f.Close() }
