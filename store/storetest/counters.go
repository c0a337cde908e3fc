package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Cases of the shared attempt counters (store.Counters) and of the
// store.Limits front over them.

func take(key string, max int, window time.Duration) store.CounterOp {
	return store.CounterOp{Kind: store.CounterTake, Key: key, Max: max, Window: window}
}

func apply1(t *testing.T, c store.Counters, now time.Time, op store.CounterOp) store.CounterResult {
	t.Helper()
	out, err := c.ApplyCounters(ctx(), now, []store.CounterOp{op})
	must(t, err, fmt.Sprintf("op %d on %q", op.Kind, op.Key))
	if len(out) != 1 {
		t.Fatalf("%d results for one op", len(out))
	}
	return out[0]
}

func testCountersWindow(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	w := 15 * time.Minute
	for i := 1; i <= 3; i++ {
		r := apply1(t, s, ts.Add(time.Duration(i)*time.Second), take("k", 3, w))
		if !r.Taken || r.Count != i || !r.Ends.Equal(ts.Add(time.Second+w)) {
			t.Fatalf("take %d = %+v, want taken, count %d, window ending %v", i, r, i, ts.Add(time.Second+w))
		}
	}
	r := apply1(t, s, ts.Add(time.Minute), take("k", 3, w))
	if r.Taken || r.Count != 3 {
		t.Fatalf("take over max = %+v, want refused at count 3", r)
	}
	// Refused takes are not counted: one refund makes room for one.
	apply1(t, s, ts.Add(time.Minute), take("k", 3, w))
	if r := apply1(t, s, ts.Add(time.Minute), store.CounterOp{Kind: store.CounterRefund, Key: "k", Max: 3}); r.Count != 2 {
		t.Fatalf("refund after refused takes: count %d, want 2", r.Count)
	}
	if r := apply1(t, s, ts.Add(time.Minute), take("k", 3, w)); !r.Taken || r.Count != 3 {
		t.Fatalf("take after refund = %+v, want taken at 3", r)
	}
	if r := apply1(t, s, ts.Add(time.Minute), store.CounterOp{Kind: store.CounterPeek, Key: "k", Max: 3}); r.Count != 3 || r.Taken {
		t.Fatalf("peek = %+v, want count 3", r)
	}
	// Other keys are apart.
	if r := apply1(t, s, ts.Add(time.Minute), take("other", 3, w)); !r.Taken || r.Count != 1 {
		t.Fatalf("another key = %+v", r)
	}
	// The window ends: a new one opens with the next take.
	end := ts.Add(time.Second + w)
	if r := apply1(t, s, end, store.CounterOp{Kind: store.CounterPeek, Key: "k", Max: 3}); r.Count != 0 {
		t.Fatalf("peek at the window's end = %+v, want empty", r)
	}
	if r := apply1(t, s, end, take("k", 3, w)); !r.Taken || r.Count != 1 || !r.Ends.Equal(end.Add(w)) {
		t.Fatalf("take in a new window = %+v", r)
	}
	// Reset forgets.
	apply1(t, s, end, store.CounterOp{Kind: store.CounterReset, Key: "k"})
	if r := apply1(t, s, end, store.CounterOp{Kind: store.CounterPeek, Key: "k"}); r.Count != 0 {
		t.Fatalf("peek after reset = %+v", r)
	}
	// A refund of an unknown key is nothing.
	if r := apply1(t, s, end, store.CounterOp{Kind: store.CounterRefund, Key: "nobody", Max: 3}); r.Count != 0 {
		t.Fatalf("refund of an unknown key = %+v", r)
	}
}

func testCountersFlag(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a := openWith(t, o)
	if r := apply1(t, a, ts, take("flag", 1, 0)); !r.Taken || r.Count != 1 || !r.Ends.IsZero() {
		t.Fatalf("setting a flag = %+v", r)
	}
	_, err := a.DeleteExpired(ctx(), ts.Add(100*365*24*time.Hour))
	must(t, err, "janitor")
	// Another node (or the same after a restart) sees it.
	b := openWith(t, o)
	if r := apply1(t, b, ts.Add(time.Hour), store.CounterOp{Kind: store.CounterPeek, Key: "flag", Max: 1}); r.Count != 1 {
		t.Fatalf("flag seen by another node = %+v", r)
	}
}

func testCountersChain(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	w := time.Hour
	apply1(t, s, ts, take("ip", 1, w))
	out, err := s.ApplyCounters(ctx(), ts, []store.CounterOp{take("ip", 1, w), {Kind: store.CounterTake, Key: "user", Max: 5, Window: w, IfTaken: true}})
	must(t, err, "chain")
	if out[0].Taken || !out[1].Skipped || out[1].Taken {
		t.Fatalf("chain with the first over = %+v", out)
	}
	if r := apply1(t, s, ts, store.CounterOp{Kind: store.CounterPeek, Key: "user", Max: 5}); r.Count != 0 {
		t.Fatalf("skipped op counted: %+v", r)
	}
	out, err = s.ApplyCounters(ctx(), ts, []store.CounterOp{take("ip2", 1, w), {Kind: store.CounterTake, Key: "user", Max: 5, Window: w, IfTaken: true}})
	must(t, err, "chain")
	if !out[0].Taken || !out[1].Taken || out[1].Count != 1 {
		t.Fatalf("chain under the limits = %+v", out)
	}
}

func testCountersInvalid(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	for name, ops := range map[string][]store.CounterOp{
		"empty key":         {take("", 1, time.Minute)},
		"long key":          {take(string(make([]byte, store.MaxCounterKey+1)), 1, time.Minute)},
		"max 0":             {take("k", 0, time.Minute)},
		"negative window":   {take("k", 1, -time.Minute)},
		"unknown op":        {{Kind: 99, Key: "k"}},
		"IfTaken first":     {{Kind: store.CounterTake, Key: "k", Max: 1, IfTaken: true}},
		"IfTaken after ref": {{Kind: store.CounterRefund, Key: "a", Max: 1}, {Kind: store.CounterTake, Key: "k", Max: 1, IfTaken: true}},
	} {
		_, err := s.ApplyCounters(ctx(), ts, ops)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func testCountersJanitor(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	apply1(t, s, ts, take("short", 5, time.Minute))
	apply1(t, s, ts, take("long", 5, time.Hour))
	apply1(t, s, ts, take("flag", 1, 0))
	n, err := s.DeleteExpired(ctx(), ts.Add(2*time.Minute))
	must(t, err, "janitor")
	if n < 1 {
		t.Fatalf("janitor deleted %d records, want the expired counter", n)
	}
	db := rawSQL(t, s)
	var left int
	must(t, db.QueryRow("SELECT COUNT(*) FROM counters").Scan(&left), "counting rows")
	if left != 2 {
		t.Fatalf("%d counter rows left, want 2 (the unexpired one and the flag)", left)
	}
}

// testCountersConcurrent: many goroutines on two nodes take one key at
// once; no more than max are let through.
func testCountersConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	nodes := []store.Store{openWith(t, o), openWith(t, o)}
	const max, n = 7, 40
	ok, errs := race(n, func(i int) error {
		r := apply1(t, nodes[i%2], ts, take("hot", max, time.Hour))
		if !r.Taken {
			return errors.New("refused")
		}
		return nil
	})
	if ok != max {
		t.Fatalf("%d of %d concurrent takes were let through, want exactly %d (%d refused)", ok, n, max, len(errs))
	}
}

// testLimitsConcurrent: the same through a store.Limits per node, which
// batches takes and remembers keys that are over.
func testLimitsConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	var fronts []*store.Limits
	for range 2 {
		f := store.NewLimits(openWith(t, o), nil, nil)
		t.Cleanup(f.Close)
		fronts = append(fronts, f)
	}
	const max, n = 9, 60
	ip := store.Limit{Key: "ip", Max: 1000, Window: time.Hour}
	user := store.Limit{Key: "user", Max: max, Window: time.Hour}
	var mu sync.Mutex
	var taken int
	_, errs := race(n, func(i int) error {
		v, err := fronts[i%2].Take(ctx(), ip, user)
		if err != nil {
			return err
		}
		if v.OK {
			mu.Lock()
			taken++
			mu.Unlock()
		} else if v.Refused != 1 {
			return fmt.Errorf("refused by limit %d, want 1 (the user)", v.Refused)
		}
		return nil
	})
	if len(errs) > 0 {
		t.Fatalf("takes failed: %v", errs)
	}
	if taken != max {
		t.Fatalf("%d of %d concurrent takes were let through, want exactly %d", taken, n, max)
	}
	c, err := fronts[0].Count(ctx(), ip)
	must(t, err, "count")
	if c != n {
		t.Fatalf("address counted %d attempts, want %d (each counted before the user's)", c, n)
	}
	// Refunded on one node: the other node's memory may still refuse
	// until the window ends, but the store now lets one through.
	must(t, fronts[0].Refund(ctx(), user), "refund")
	v, err := fronts[0].Take(ctx(), user)
	must(t, err, "take after refund")
	if !v.OK {
		t.Fatalf("take after a refund on the same node refused: %+v", v)
	}
	v, err = fronts[1].Take(ctx(), user)
	must(t, err, "take over max")
	if v.OK || v.Refused != 0 || v.Ends.IsZero() {
		t.Fatalf("take over max on the other node = %+v, want refused with the window's end", v)
	}
}

// BenchCounters measures takes of distinct keys (a flood of first factors
// for unknown users, each a failure) straight on the store and through a
// store.Limits (group commit), with b.RunParallel.
func BenchCounters(b *testing.B, newDB func(b *testing.B) Opener) {
	s, err := newDB(b)(ctx())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var n sync.Mutex
	seq := 0
	next := func() int {
		n.Lock()
		defer n.Unlock()
		seq++
		return seq
	}
	b.Run("ApplyCounters", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next()
				if _, err := s.ApplyCounters(ctx(), time.Now(), []store.CounterOp{
					take(fmt.Sprint("src/", i), 20, time.Minute),
					{Kind: store.CounterTake, Key: fmt.Sprint("user/", i), Max: 10, Window: time.Minute, IfTaken: true},
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("Limits", func(b *testing.B) {
		l := store.NewLimits(s, nil, nil)
		defer l.Close()
		b.SetParallelism(64) // many logins at once, as a NAS sends them
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next()
				if _, err := l.Take(ctx(), store.Limit{Key: fmt.Sprint("src/", i), Max: 20, Window: time.Minute},
					store.Limit{Key: fmt.Sprint("user/", i), Max: 10, Window: time.Minute}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// testCountersMixedCall: one call with takes, chains, refunds, peeks,
// resets and a key met twice gives what the ops one by one would.
func testCountersMixedCall(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	w := time.Hour
	apply1(t, s, ts, take("full", 1, w))
	apply1(t, s, ts, take("r", 5, w))
	apply1(t, s, ts, take("r", 5, w))
	apply1(t, s, ts, take("gone", 5, w))
	ops := []store.CounterOp{
		take("a", 2, w),
		{Kind: store.CounterTake, Key: "b", Max: 2, Window: w, IfTaken: true},
		take("full", 1, w),
		{Kind: store.CounterTake, Key: "c", Max: 2, Window: w, IfTaken: true},
		{Kind: store.CounterRefund, Key: "r", Max: 5},
		{Kind: store.CounterRefund, Key: "nothing", Max: 5},
		take("a", 2, w), // a again: after the first take of a
		take("a", 2, w),
		{Kind: store.CounterPeek, Key: "b", Max: 2},
		{Kind: store.CounterReset, Key: "gone"},
		{Kind: store.CounterPeek, Key: "c", Max: 2},
	}
	out, err := s.ApplyCounters(ctx(), ts, ops)
	must(t, err, "mixed call")
	want := []struct {
		count          int
		taken, skipped bool
	}{{1, true, false}, {1, true, false}, {1, false, false}, {0, false, true}, {1, false, false}, {0, false, false},
		{2, true, false}, {2, false, false}, {1, false, false}, {0, false, false}, {0, false, false}}
	for i, w := range want {
		if out[i].Count != w.count || out[i].Taken != w.taken || out[i].Skipped != w.skipped {
			t.Errorf("op %d (%d on %q) = %+v, want count %d taken %v skipped %v", i, ops[i].Kind, ops[i].Key, out[i], w.count, w.taken, w.skipped)
		}
	}
	if r := apply1(t, s, ts, store.CounterOp{Kind: store.CounterPeek, Key: "gone"}); r.Count != 0 {
		t.Errorf("reset key still counts %d", r.Count)
	}
}
