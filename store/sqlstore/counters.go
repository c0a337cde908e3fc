package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// The counters table keeps n, the attempts counted in the window, and the
// window's end (0: never). A take that finds the key at max stores max+1:
// the statement's one returned row then tells a counted attempt (n <= max)
// from a refused one, with no read before the write. n is read back as at
// most max.
const (
	counterTake = `INSERT INTO counters (key, n, expires_at) VALUES ($1, 1, $2)
ON CONFLICT (key) DO UPDATE SET
	n = CASE WHEN counters.expires_at <> 0 AND counters.expires_at <= $3 THEN 1
		WHEN counters.n < $4 THEN counters.n + 1
		ELSE $4 + 1 END,
	expires_at = CASE WHEN counters.expires_at <> 0 AND counters.expires_at <= $3 THEN $2
		ELSE counters.expires_at END
RETURNING n, expires_at`
	counterRefund = `UPDATE counters SET n = CASE WHEN n > $2 THEN $2 - 1 WHEN n > 0 THEN n - 1 ELSE 0 END
WHERE key = $1 AND (expires_at = 0 OR expires_at > $3)
RETURNING n, expires_at`
	counterReset = `DELETE FROM counters WHERE key = $1`
	counterPeek  = `SELECT n, expires_at FROM counters WHERE key = $1`
)

// ApplyCounters implements store.Counters. Calls of peeks only read
// outside a transaction.
func (s *DB) ApplyCounters(ctx context.Context, now time.Time, ops []store.CounterOp) ([]store.CounterResult, error) {
	if err := store.CheckCounterOps(ops); err != nil {
		return nil, fmt.Errorf("counters: %w", err)
	}
	out := make([]store.CounterResult, len(ops))
	readOnly := true
	for _, op := range ops {
		readOnly = readOnly && op.Kind == store.CounterPeek
	}
	if readOnly {
		for i, op := range ops {
			r, err := s.counterRow(s.queryRow(ctx, counterPeek, op.Key), op, now)
			if err != nil {
				return nil, s.wrap("reading counter", err)
			}
			out[i] = r
		}
		return out, nil
	}
	// Prepared before the transaction: preparing inside it would take a
	// second connection from the pool while holding one (with the pool
	// full of such transactions, none could go on).
	stmts := map[string]*sql.Stmt{}
	for _, q := range []string{counterTake, counterRefund, counterReset, counterPeek} {
		st, err := s.stmt(ctx, q)
		if err != nil {
			return nil, s.wrap("preparing counter statements", err)
		}
		stmts[q] = st
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, op := range ops {
			if op.IfTaken && !out[i-1].Taken {
				out[i].Skipped = true
				continue
			}
			r, err := s.applyCounter(ctx, tx, stmts, op, now)
			if err != nil {
				return s.wrap("updating counter", err)
			}
			out[i] = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *DB) applyCounter(ctx context.Context, tx *sql.Tx, stmts map[string]*sql.Stmt, op store.CounterOp, now time.Time) (store.CounterResult, error) {
	row := func(query string, args ...any) (*sql.Row, error) {
		return tx.StmtContext(ctx, stmts[query]).QueryRowContext(ctx, args...), nil
	}
	var (
		r   *sql.Row
		err error
	)
	switch op.Kind {
	case store.CounterTake:
		ends := int64(0)
		if op.Window > 0 {
			ends = now.Add(op.Window).UnixMicro()
		}
		r, err = row(counterTake, op.Key, ends, now.UnixMicro(), op.Max)
	case store.CounterRefund:
		r, err = row(counterRefund, op.Key, op.Max, now.UnixMicro())
	case store.CounterPeek:
		r, err = row(counterPeek, op.Key)
	case store.CounterReset:
		_, err := tx.StmtContext(ctx, stmts[counterReset]).ExecContext(ctx, op.Key)
		return store.CounterResult{}, err
	}
	if err != nil {
		return store.CounterResult{}, err
	}
	return s.counterRow(r, op, now)
}

// counterRow reads (n, expires_at); no row, or an expired one, is an empty
// window.
func (s *DB) counterRow(r *sql.Row, op store.CounterOp, now time.Time) (store.CounterResult, error) {
	var n, ends int64
	switch err := r.Scan(&n, &ends); {
	case err == sql.ErrNoRows:
		return store.CounterResult{}, nil
	case err != nil:
		return store.CounterResult{}, err
	}
	if ends != 0 && ends <= now.UnixMicro() {
		return store.CounterResult{}, nil
	}
	res := store.CounterResult{Count: int(n), Ends: fromMicro(ends)}
	if op.Kind == store.CounterTake {
		res.Taken = n <= int64(op.Max)
	}
	if op.Max > 0 && res.Count > op.Max {
		res.Count = op.Max
	}
	return res, nil
}
