package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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

// AppendAudit implements store.AuditLog. The head row is locked for the
// transaction, so appends from every node form one chain.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if e.Time.IsZero() || e.Action == "" {
		return e, fmt.Errorf("%w: audit event needs a time and an action", store.ErrInvalid)
	}
	if len(s.auditKey) != store.AuditKeySize {
		return e, fmt.Errorf("%w: no audit chain key: the store was opened without one", store.ErrInvalid)
	}
	// Times are kept to the microsecond; hash what is stored.
	e.Time = fromMicro(micro(e.Time))
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	details, err := json.Marshal(e.Details)
	if err != nil {
		return e, fmt.Errorf("%w: audit details: %v", store.ErrInvalid, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		var head store.AuditHead
		if err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1"+s.d.ForUpdate).Scan(&head.Seq, &head.Hash); err != nil {
			return s.wrap("reading audit head", err)
		}
		e.Seq, e.PrevHash = head.Seq+1, head.Hash
		if e.PrevHash == nil {
			e.PrevHash = []byte{}
		}
		e.Hash = store.ChainHash(s.auditKey, e.PrevHash, e)
		if _, err := tx.ExecContext(ctx, "INSERT INTO audit_events ("+auditColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
			e.Seq, micro(e.Time), e.Actor, e.Action, e.Subject, e.Channel, e.ClientIP, string(e.Result), e.Reason, string(details), e.PrevHash, e.Hash); err != nil {
			return s.wrap("appending audit event", err)
		}
		if _, err := tx.ExecContext(ctx, "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", e.Seq, e.Hash); err != nil {
			return s.wrap("moving audit head", err)
		}
		return nil
	})
	return e, err
}

// ListAudit implements store.AuditLog.
func (s *DB) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+auditColumns+" FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2", afterSeq, limit)
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

// AuditHead implements store.AuditLog.
func (s *DB) AuditHead(ctx context.Context) (store.AuditHead, error) {
	var h store.AuditHead
	err := s.db.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&h.Seq, &h.Hash)
	if h.Hash == nil {
		h.Hash = []byte{}
	}
	return h, s.wrap("reading audit head", err)
}
