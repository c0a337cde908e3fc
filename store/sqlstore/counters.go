package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// The counters table keeps n, the attempts counted in the window, the
// window's end (0: never) and lim, the max of the last take. A take that
// finds the key at max stores max+1: the statement's returned row then
// tells a counted attempt (n <= max) from a refused one, with no read
// before the write. n is read back as at most max.
//
// A take is one upsert; the takes of a call go into one multi-row upsert
// when their keys are distinct (a batch of concurrent logins): per row,
// the max comes in as excluded.lim. Statement overhead, not the B-tree,
// was most of the cost of one statement per key.
const (
	counterReset = `DELETE FROM counters WHERE key = $1`
	counterPeek  = `SELECT n, expires_at FROM counters WHERE key = $1`
)

// maxTakeRows bounds the rows of one take statement (SQLite looks $N up
// linearly, so statements stay small).
const maxTakeRows = 64

// refundQueries[n] refunds n keys: $1 is now, then key and max per row.
var refundQueries = func() []string {
	qs := make([]string, maxTakeRows+1)
	for rows := 1; rows <= maxTakeRows; rows++ {
		var b strings.Builder
		b.WriteString(`UPDATE counters SET n = CASE WHEN counters.n > v.lim THEN v.lim - 1 WHEN counters.n > 0 THEN counters.n - 1 ELSE 0 END
FROM (`)
		for i := range rows {
			if i > 0 {
				b.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&b, "SELECT CAST($%d AS TEXT) AS k, CAST($%d AS INTEGER) AS lim", 2*i+2, 2*i+3)
		}
		b.WriteString(`) AS v
WHERE counters.key = v.k AND (counters.expires_at = 0 OR counters.expires_at > $1)
RETURNING counters.key, counters.n, counters.expires_at`)
		qs[rows] = b.String()
	}
	return qs
}()

// takeQueries[n] takes n keys: $1 is now, then key, window end and max
// per row.
var takeQueries = func() []string {
	qs := make([]string, maxTakeRows+1)
	for rows := 1; rows <= maxTakeRows; rows++ {
		var b strings.Builder
		b.WriteString("INSERT INTO counters (key, n, expires_at, lim) VALUES ")
		for i := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($%d, 1, $%d, $%d)", 3*i+2, 3*i+3, 3*i+4)
		}
		b.WriteString(`
ON CONFLICT (key) DO UPDATE SET
	n = CASE WHEN counters.expires_at <> 0 AND counters.expires_at <= $1 THEN 1
		WHEN counters.n < excluded.lim THEN counters.n + 1
		ELSE excluded.lim + 1 END,
	expires_at = CASE WHEN counters.expires_at <> 0 AND counters.expires_at <= $1 THEN excluded.expires_at
		ELSE counters.expires_at END,
	lim = excluded.lim
RETURNING key, n, expires_at`)
		qs[rows] = b.String()
	}
	return qs
}()

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
			r, err := counterRow(s.queryRow(ctx, counterPeek, op.Key), op, now)
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
	for _, q := range []string{counterReset, counterPeek, refundQueries[1]} {
		st, err := s.stmt(ctx, q)
		if err != nil {
			return nil, s.wrap("preparing counter statements", err)
		}
		stmts[q] = st
	}
	segments := counterSegments(ops)
	for _, seg := range segments {
		for _, q := range seg.queries(ops) {
			if stmts[q] != nil {
				continue
			}
			st, err := s.stmt(ctx, q)
			if err != nil {
				return nil, s.wrap("preparing counter statements", err)
			}
			stmts[q] = st
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		bound := map[string]*sql.Stmt{}
		st := func(q string) *sql.Stmt {
			if b := bound[q]; b != nil {
				return b
			}
			b := tx.StmtContext(ctx, stmts[q])
			bound[q] = b
			return b
		}
		for _, seg := range segments {
			if err := s.applySegment(ctx, st, ops, seg, out, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// A segment is a run of ops on distinct keys: within it the order of the
// ops does not matter (but for IfTaken, which applySegment keeps), so its
// takes go into multi-row upserts and its refunds into multi-row updates.
// A key met again starts the next segment.
type segment struct{ takes, refunds, others []int }

func counterSegments(ops []store.CounterOp) []segment {
	var segs []segment
	var cur segment
	seen := map[string]bool{}
	for i, op := range ops {
		if seen[op.Key] {
			segs = append(segs, cur)
			cur, seen = segment{}, map[string]bool{}
		}
		seen[op.Key] = true
		switch op.Kind {
		case store.CounterTake:
			cur.takes = append(cur.takes, i)
		case store.CounterRefund:
			cur.refunds = append(cur.refunds, i)
		default:
			cur.others = append(cur.others, i)
		}
	}
	return append(segs, cur)
}

// queries are the statements the segment runs.
func (g segment) queries(ops []store.CounterOp) []string {
	var qs []string
	for _, c := range []struct {
		n  int
		qs []string
	}{{len(g.takes), takeQueries}, {len(g.refunds), refundQueries}} {
		if c.n >= maxTakeRows {
			qs = append(qs, c.qs[maxTakeRows])
		}
		if r := c.n % maxTakeRows; r != 0 {
			qs = append(qs, c.qs[r])
		}
	}
	return qs
}

func (s *DB) applySegment(ctx context.Context, st func(string) *sql.Stmt, ops []store.CounterOp, g segment, out []store.CounterResult, now time.Time) error {
	if err := s.multiRow(ctx, st, takeQueries, 3, ops, g.takes, out, now, func(op store.CounterOp) []any {
		return []any{op.Key, windowEnd(op, now), op.Max}
	}); err != nil {
		return s.wrap("taking counters", err)
	}
	// What an IfTaken op took after a refused one is given back in the
	// same transaction: no other transaction sees the difference.
	for _, i := range g.takes {
		op := ops[i]
		if !op.IfTaken || out[i-1].Taken {
			continue
		}
		if out[i].Taken {
			if err := s.multiRow(ctx, st, refundQueries, 2, []store.CounterOp{{Kind: store.CounterRefund, Key: op.Key, Max: op.Max}}, []int{0}, make([]store.CounterResult, 1), now, refundArgs); err != nil {
				return s.wrap("updating counter", err)
			}
		}
		out[i] = store.CounterResult{Skipped: true}
	}
	if err := s.multiRow(ctx, st, refundQueries, 2, ops, g.refunds, out, now, refundArgs); err != nil {
		return s.wrap("refunding counters", err)
	}
	for _, i := range g.others {
		var err error
		if ops[i].Kind == store.CounterReset {
			_, err = st(counterReset).ExecContext(ctx, ops[i].Key)
		} else {
			out[i], err = counterRow(st(counterPeek).QueryRowContext(ctx, ops[i].Key), ops[i], now)
		}
		if err != nil {
			return s.wrap("updating counter", err)
		}
	}
	return nil
}

func refundArgs(op store.CounterOp) []any { return []any{op.Key, op.Max} }

// multiRow runs the ops at idx (distinct keys) through queries, chunk by
// chunk: $1 is now, then per row the arguments of args. Each returned
// row (key, n, expires_at) is the result of its key's op; a key without a
// row (a refund of nothing) keeps the zero result.
func (s *DB) multiRow(ctx context.Context, st func(string) *sql.Stmt, queries []string, perRow int, ops []store.CounterOp, idx []int,
	out []store.CounterResult, now time.Time, args func(store.CounterOp) []any) error {
	index := make(map[string]int, len(idx))
	for _, i := range idx {
		index[ops[i].Key] = i
	}
	for start := 0; start < len(idx); start += maxTakeRows {
		chunk := idx[start:min(start+maxTakeRows, len(idx))]
		a := make([]any, 0, 1+perRow*len(chunk))
		a = append(a, now.UnixMicro())
		for _, i := range chunk {
			a = append(a, args(ops[i])...)
		}
		rows, err := st(queries[len(chunk)]).QueryContext(ctx, a...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var key string
			var n, ends int64
			if err := rows.Scan(&key, &n, &ends); err != nil {
				rows.Close()
				return err
			}
			i, ok := index[key]
			if !ok {
				rows.Close()
				return fmt.Errorf("%s returned an unknown key", s.d.Name)
			}
			out[i] = countResult(ops[i], n, ends, now)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	return nil
}

func windowEnd(op store.CounterOp, now time.Time) int64 {
	if op.Window > 0 {
		return now.Add(op.Window).UnixMicro()
	}
	return 0
}

// countResult is an op's result from the row it left: n, the window's
// end. A refused take left max+1.
func countResult(op store.CounterOp, n, ends int64, now time.Time) store.CounterResult {
	if ends != 0 && ends <= now.UnixMicro() {
		return store.CounterResult{}
	}
	r := store.CounterResult{Count: int(min(n, int64(op.Max))), Ends: fromMicro(ends)}
	r.Taken = op.Kind == store.CounterTake && n <= int64(op.Max)
	return r
}

// counterRow reads (n, expires_at); no row, or an expired one, is an empty
// window.
func counterRow(r *sql.Row, op store.CounterOp, now time.Time) (store.CounterResult, error) {
	var n, ends int64
	switch err := r.Scan(&n, &ends); {
	case errors.Is(err, sql.ErrNoRows):
		return store.CounterResult{}, nil
	case err != nil:
		return store.CounterResult{}, err
	}
	if ends != 0 && ends <= now.UnixMicro() {
		return store.CounterResult{}, nil
	}
	res := store.CounterResult{Count: int(n), Ends: fromMicro(ends)}
	if op.Max > 0 && res.Count > op.Max {
		res.Count = op.Max
	}
	return res, nil
}
