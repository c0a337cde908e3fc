package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/bridge-idp/bridge/store"
)

var auditColumns = columns("seq", "occurred_at", "actor", "action", "subject", "channel", "client_ip", "result", "reason", "details_json", "prev_hash", "hash")

func scanAudit(sc scanner) (store.AuditEvent, error) {
	var (
		e              store.AuditEvent
		t              int64
		result, detail string
	)
	if err := sc.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Subject, &e.Channel, &e.ClientIP, &result, &e.Reason, &detail, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	e.Time, e.Result = fromMicro(t), store.AuditResult(result)
	if err := json.Unmarshal([]byte(detail), &e.Details); err != nil {
		// A row whose details do not parse is reported by VerifyChain as
		// modified (its hash will not match); keep the raw text visible.
		e.Details = map[string]string{"unparseable_details": detail}
	}
	return e, nil
}

// AppendAudit implements store.AuditLog: a batch of one.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	out, err := s.AppendAuditBatch(ctx, []store.AuditEvent{e})
	if err != nil {
		return e, err
	}
	return out[0], nil
}

// auditRowsPerInsert bounds the rows of one INSERT: 12 parameters a row
// stay well under PostgreSQL's 65535 and SQLite's 32766.
const auditRowsPerInsert = 200

// AppendAuditBatch implements store.AuditLog. The head row is locked for
// the transaction, so appends from every node form one chain; the events
// are chained in order exactly as single appends would chain them.
func (s *DB) AppendAuditBatch(ctx context.Context, events []store.AuditEvent) ([]store.AuditEvent, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if len(s.auditKey) != store.AuditKeySize {
		return nil, fmt.Errorf("%w: no audit chain key: the store was opened without one", store.ErrInvalid)
	}
	out := make([]store.AuditEvent, len(events))
	details := make([]string, len(events))
	for i, e := range events {
		if e.Time.IsZero() || e.Action == "" {
			return nil, fmt.Errorf("%w: audit event %d of %d needs a time and an action", store.ErrInvalid, i+1, len(events))
		}
		// Times are kept to the microsecond, and text as valid UTF-8
		// without NUL (what JSON and PostgreSQL can hold): hash what is
		// stored.
		e.Time = fromMicro(micro(e.Time))
		e = storableText(e)
		d, err := json.Marshal(e.Details)
		if err != nil {
			return nil, fmt.Errorf("%w: audit event %d of %d: details: %v", store.ErrInvalid, i+1, len(events), err)
		}
		out[i], details[i] = e, string(d)
	}
	// The INSERTs are prepared before the transaction (once per text and
	// connection, in the statement cache): preparing inside it would need
	// a second connection while holding one, which can exhaust a pool.
	rows := auditRowsPerInsert
	if s.d.AuditRowsPerInsert > 0 {
		rows = s.d.AuditRowsPerInsert
	}
	type chunk struct {
		from, to int
		st       *sql.Stmt
	}
	var chunks []chunk
	for from := 0; from < len(out); from += rows {
		to := min(from+rows, len(out))
		st, err := s.stmt(ctx, auditInsert(to-from))
		if err != nil {
			return nil, s.wrap("preparing the audit insert", err)
		}
		chunks = append(chunks, chunk{from, to, st})
	}
	headUpdate, err := s.stmt(ctx, "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
	if err != nil {
		return nil, s.wrap("preparing the audit head update", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var head store.AuditHead
		if err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1"+s.d.ForUpdate).Scan(&head.Seq, &head.Hash); err != nil {
			return s.wrap("reading audit head", err)
		}
		prev := head.Hash
		if prev == nil {
			prev = []byte{}
		}
		for i := range out {
			out[i].Seq, out[i].PrevHash = head.Seq+int64(i)+1, prev
			out[i].Hash = store.ChainHash(s.auditKey, prev, out[i])
			prev = out[i].Hash
		}
		for _, c := range chunks {
			args := make([]any, 0, 12*(c.to-c.from))
			for _, e := range out[c.from:c.to] {
				args = append(args, e.Seq, micro(e.Time), e.Actor, e.Action, e.Subject, e.Channel, e.ClientIP,
					string(e.Result), e.Reason, details[e.Seq-head.Seq-1], e.PrevHash, e.Hash)
			}
			if _, err := tx.StmtContext(ctx, c.st).ExecContext(ctx, args...); err != nil {
				return s.wrap("appending audit events", err)
			}
		}
		last := out[len(out)-1]
		if _, err := tx.StmtContext(ctx, headUpdate).ExecContext(ctx, last.Seq, last.Hash); err != nil {
			return s.wrap("moving audit head", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ListAudit implements store.AuditLog.
func (s *DB) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, "SELECT "+auditColumns+" FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2", afterSeq, limit)
	if err != nil {
		return nil, s.wrap("listing audit events", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, s.wrap("listing audit events", err)
		}
		out = append(out, e)
	}
	return out, s.wrap("listing audit events", rows.Err())
}

// ListAuditBySubject implements store.AuditLog, on the index
// audit_events_by_subject (migration 8).
func (s *DB) ListAuditBySubject(ctx context.Context, subject string, beforeSeq int64, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	if beforeSeq <= 0 {
		beforeSeq = math.MaxInt64
	}
	if !utf8.ValidString(subject) || strings.IndexByte(subject, 0) >= 0 {
		return nil, nil // no stored subject is like that (storableText)
	}
	rows, err := s.query(ctx, "SELECT "+auditColumns+" FROM audit_events WHERE subject = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3", subject, beforeSeq, limit)
	if err != nil {
		return nil, s.wrap("listing a subject's audit events", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, s.wrap("listing a subject's audit events", err)
		}
		out = append(out, e)
	}
	return out, s.wrap("listing a subject's audit events", rows.Err())
}

// AuditHead implements store.AuditLog.
func (s *DB) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.queryRow(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&h.Seq, &h.Hash)
	if h.Hash == nil {
		h.Hash = []byte{}
	}
	return h, s.wrap("reading audit head", err)
}

// storableText returns e with every string valid UTF-8 and free of NUL
// bytes, which PostgreSQL's TEXT refuses and JSON would silently rewrite:
// an event carrying bytes from a packet or a form is then stored exactly as
// it is hashed.
func storableText(e store.AuditEvent) store.AuditEvent {
	fix := func(s string) string {
		if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
			return s
		}
		return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	}
	e.Actor, e.Action, e.Subject, e.Channel = fix(e.Actor), fix(e.Action), fix(e.Subject), fix(e.Channel)
	e.ClientIP, e.Reason = fix(e.ClientIP), fix(e.Reason)
	d := make(map[string]string, len(e.Details))
	for k, v := range e.Details {
		d[fix(k)] = fix(v)
	}
	e.Details = d
	return e
}

// auditInsert is the INSERT of n audit events.
func auditInsert(n int) string {
	var q strings.Builder
	q.WriteString("INSERT INTO audit_events (" + auditColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		p := 12 * i
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)",
			p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9, p+10, p+11, p+12)
	}
	return q.String()
}
