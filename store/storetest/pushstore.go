package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Cases of the push records only a full store keeps: throttles,
// activations, batched audit appends.

func testPushLimits(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	l, err := s.GetPushLimit(ctx(), "alice")
	must(t, err, "get unknown")
	if l != (store.PushLimit{User: "alice"}) {
		t.Fatalf("limit of a user without one = %+v, want zero with the user set", l)
	}
	want := store.PushLimit{User: "alice", Failures: 3, NextAt: ts.Add(time.Minute), LockedUntil: ts.Add(time.Hour),
		LockReason: "fraud reported", UpdatedAt: ts}
	got, err := s.UpdatePushLimit(ctx(), "alice", func(old store.PushLimit) (store.PushLimit, error) {
		if old != (store.PushLimit{User: "alice"}) {
			t.Errorf("update of a new limit read %+v", old)
		}
		return want, nil
	})
	must(t, err, "update")
	if got != want {
		t.Fatalf("update returned %+v, want %+v", got, want)
	}
	l, err = s.GetPushLimit(ctx(), "alice")
	must(t, err, "get")
	if l.User != want.User || l.Failures != want.Failures || !l.NextAt.Equal(want.NextAt) || !l.LockedUntil.Equal(want.LockedUntil) ||
		l.LockReason != want.LockReason || !l.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("round trip: %+v, want %+v", l, want)
	}

	boom := errors.New("boom")
	_, err = s.UpdatePushLimit(ctx(), "alice", func(old store.PushLimit) (store.PushLimit, error) {
		old.Failures = 99
		return old, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error not returned: %v", err)
	}
	if l, _ := s.GetPushLimit(ctx(), "alice"); l.Failures != 3 {
		t.Fatalf("aborted update was written: %d failures", l.Failures)
	}
	_, err = s.UpdatePushLimit(ctx(), "bob", func(old store.PushLimit) (store.PushLimit, error) {
		old.Failures = 1
		return old, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error not returned: %v", err)
	}
	if l, _ := s.GetPushLimit(ctx(), "bob"); l != (store.PushLimit{User: "bob"}) {
		t.Fatalf("an aborted first update left %+v", l)
	}
	_, err = s.UpdatePushLimit(ctx(), "alice", func(old store.PushLimit) (store.PushLimit, error) {
		old.User = "mallory"
		return old, nil
	})
	wantErr(t, err, store.ErrInvalid, "moving a limit to another user")
}

// testPushLimitsNoLostUpdates starts without a row, so the writers also
// race to create it.
func testPushLimitsNoLostUpdates(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o) // two nodes
	const writers, each = 8, 5
	ok, errs := race(writers, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		for range each {
			if _, err := s.UpdatePushLimit(ctx(), "carol", func(l store.PushLimit) (store.PushLimit, error) {
				l.Failures++
				return l, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if ok != writers {
		t.Fatalf("concurrent updates failed: %v", errs)
	}
	l, err := b.GetPushLimit(ctx(), "carol")
	must(t, err, "get")
	if l.Failures != writers*each {
		t.Fatalf("lost updates: %d failures, want %d", l.Failures, writers*each)
	}
}

func activation(id, userName string, created time.Time) store.Activation {
	return store.Activation{ID: id, User: userName, SecretHash: []byte("hmac-" + id), CreatedBy: "cli:root",
		CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute)}
}

func noCheck(store.Activation) error { return nil }

func testActivationsCRUD(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	_, err := s.GetActivation(ctx(), "a1")
	wantErr(t, err, store.ErrNotFound, "get before create")
	a1 := activation("a1", "dave", ts)
	must(t, s.CreateActivation(ctx(), a1), "create")
	wantErr(t, s.CreateActivation(ctx(), activation("a1", "erin", ts)), store.ErrConflict, "duplicate id")
	must(t, s.CreateActivation(ctx(), activation("a2", "dave", ts.Add(time.Minute))), "create second")
	must(t, s.CreateActivation(ctx(), activation("b1", "erin", ts)), "create for another user")
	for name, bad := range map[string]store.Activation{
		"no id":     activation("", "dave", ts),
		"no user":   activation("x1", "", ts),
		"no secret": func() store.Activation { a := activation("x2", "dave", ts); a.SecretHash = nil; return a }(),
		"no expiry": func() store.Activation { a := activation("x3", "dave", ts); a.ExpiresAt = time.Time{}; return a }(),
	} {
		if err := s.CreateActivation(ctx(), bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}

	got, err := s.GetActivation(ctx(), "a1")
	must(t, err, "get")
	if got.ID != a1.ID || got.User != a1.User || !bytes.Equal(got.SecretHash, a1.SecretHash) || got.CreatedBy != a1.CreatedBy ||
		!got.CreatedAt.Equal(a1.CreatedAt) || !got.ExpiresAt.Equal(a1.ExpiresAt) || !got.UsedAt.IsZero() || got.DeviceID != "" {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a1)
	}
	list, err := s.ListActivations(ctx(), "dave")
	must(t, err, "list")
	var listed []string
	for _, a := range list {
		listed = append(listed, a.ID)
	}
	if !slices.Equal(listed, []string{"a2", "a1"}) {
		t.Fatalf("list = %v, want a2, a1 (newest first)", listed)
	}

	// Enrolling: the device takes the activation's user when it names none.
	now := ts.Add(time.Minute)
	d := device("dev-a1", "")
	used, err := s.ActivateDevice(ctx(), "a1", now, func(a store.Activation) error {
		if a.ID != "a1" || !bytes.Equal(a.SecretHash, a1.SecretHash) {
			t.Errorf("check got %+v", a)
		}
		return nil
	}, d)
	must(t, err, "activate")
	if !used.UsedAt.Equal(now) || used.DeviceID != "dev-a1" {
		t.Fatalf("activation after use: %+v", used)
	}
	dev, err := s.GetDevice(ctx(), "dev-a1")
	must(t, err, "enrolled device")
	if dev.User != "dave" {
		t.Fatalf("enrolled device belongs to %q, want dave", dev.User)
	}
	if got, _ := s.GetActivation(ctx(), "a1"); !got.UsedAt.Equal(now) || got.DeviceID != "dev-a1" {
		t.Fatalf("stored activation after use: %+v", got)
	}
	_, err = s.ActivateDevice(ctx(), "a2", now, noCheck, device("dev-a2", "erin"))
	wantErr(t, err, store.ErrInvalid, "enrolling a device for another user")
	_, err = s.ActivateDevice(ctx(), "nope", now, noCheck, device("dev-x", "dave"))
	wantErr(t, err, store.ErrNotFound, "unknown activation")
}

// testActivationsConcurrent: one code tried twenty times at once on two
// nodes enrolls one device.
func testActivationsConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	must(t, a.CreateActivation(ctx(), activation("act", "frank", ts)), "create")
	now := ts.Add(time.Minute)
	const n = 20
	warm(t, a, b, n)
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.ActivateDevice(ctx(), "act", now, noCheck, device(fmt.Sprintf("dev-%02d", i), "frank"))
		return err
	})
	if ok != 1 {
		t.Fatalf("%d of %d concurrent activations succeeded, want 1 (%v)", ok, n, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrUsed, "losing activation")
	}
	devs, err := a.ListDevices(ctx(), "frank")
	must(t, err, "list devices")
	act, err := b.GetActivation(ctx(), "act")
	must(t, err, "get activation")
	if len(devs) != 1 || devs[0].ID != act.DeviceID || !act.UsedAt.Equal(now) {
		t.Fatalf("devices %d (first %+v), activation %+v: want one device, the one the activation names", len(devs), devs, act)
	}
}

// unused checks that activation id is unused and user has no device.
func unused(t *testing.T, s store.Store, id, userName string) {
	t.Helper()
	a, err := s.GetActivation(ctx(), id)
	must(t, err, "get activation")
	if !a.UsedAt.IsZero() || a.DeviceID != "" {
		t.Fatalf("activation was marked used: %+v", a)
	}
	if ds, _ := s.ListDevices(ctx(), userName); len(ds) != 0 {
		t.Fatalf("a device was created: %+v", ds)
	}
}

func testActivationsExpired(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	a := activation("act", "gina", ts)
	must(t, s.CreateActivation(ctx(), a), "create")
	_, err := s.ActivateDevice(ctx(), "act", a.ExpiresAt, func(store.Activation) error {
		t.Error("check called for an expired activation")
		return nil
	}, device("dev-1", "gina"))
	wantErr(t, err, store.ErrExpired, "activate at the expiry")
	unused(t, s, "act", "gina")
	_, err = s.ActivateDevice(ctx(), "act", a.ExpiresAt.Add(-time.Microsecond), noCheck, device("dev-1", "gina"))
	must(t, err, "activate just in time")
	_, err = s.ActivateDevice(ctx(), "act", a.ExpiresAt.Add(-time.Microsecond), noCheck, device("dev-2", "gina"))
	wantErr(t, err, store.ErrUsed, "second use")
}

func testActivationsCheckRefuses(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateActivation(ctx(), activation("act", "hank", ts)), "create")
	wrong := errors.New("wrong secret")
	_, err := s.ActivateDevice(ctx(), "act", ts, func(store.Activation) error { return wrong }, device("dev-1", "hank"))
	if err != wrong {
		t.Fatalf("check's error not returned as is: %v", err)
	}
	unused(t, s, "act", "hank")
	_, err = s.ActivateDevice(ctx(), "act", ts, noCheck, device("dev-1", "hank"))
	must(t, err, "activate after a refused attempt")
}

func testActivationsDuplicateDevice(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateDevice(ctx(), device("taken", "ivan")), "existing device")
	must(t, s.CreateActivation(ctx(), activation("act", "judy", ts)), "create")
	_, err := s.ActivateDevice(ctx(), "act", ts, noCheck, device("taken", "judy"))
	wantErr(t, err, store.ErrConflict, "enrolling under a taken device id")
	unused(t, s, "act", "judy")
	bad := device("", "judy")
	_, err = s.ActivateDevice(ctx(), "act", ts, noCheck, bad)
	wantErr(t, err, store.ErrInvalid, "enrolling an invalid device")
	unused(t, s, "act", "judy")
}

func testJanitorActivations(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateActivation(ctx(), activation("old", "kate", ts)), "old")
	must(t, s.CreateActivation(ctx(), activation("recent", "kate", ts.Add(time.Hour))), "recent")
	must(t, s.CreateActivation(ctx(), activation("used", "kate", ts)), "used")
	_, err := s.ActivateDevice(ctx(), "used", ts, noCheck, device("dev-1", "kate"))
	must(t, err, "use")
	// "old" expired at ts+10m, "recent" at ts+70m: one day after the first
	// and less than a day after the second.
	now := ts.Add(10*time.Minute + 24*time.Hour + time.Microsecond)
	n, err := s.DeleteExpired(ctx(), now)
	must(t, err, "janitor")
	if n != 1 {
		t.Fatalf("deleted %d records, want 1", n)
	}
	_, err = s.GetActivation(ctx(), "old")
	wantErr(t, err, store.ErrNotFound, "activation expired over a day ago")
	for _, id := range []string{"recent", "used"} {
		if _, err := s.GetActivation(ctx(), id); err != nil {
			t.Errorf("activation %q deleted: %v", id, err)
		}
	}
}

func testUsersDeletePushRecords(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	for _, u := range []string{"lena", "mike"} {
		must(t, s.CreateUsers(ctx(), user(u)), "create user")
		create(t, s, challenge("c-"+u, u, ts))
		_, err := s.UpdatePushLimit(ctx(), u, func(l store.PushLimit) (store.PushLimit, error) {
			l.Failures, l.UpdatedAt = 2, ts
			return l, nil
		})
		must(t, err, "push limit")
		must(t, s.CreateActivation(ctx(), activation("a-"+u, u, ts)), "activation")
		for _, kind := range []string{store.GrantSession, store.GrantRefreshToken} {
			must(t, s.PutGrant(ctx(), store.Grant{Kind: kind, ID: "g-" + u, Subject: u, CreatedAt: ts, ExpiresAt: ts.Add(time.Hour)}), "grant")
		}
	}
	must(t, s.DeleteUser(ctx(), "lena"), "delete")
	for _, kind := range []string{store.GrantSession, store.GrantRefreshToken} {
		_, err := s.GetGrant(ctx(), kind, "g-lena", ts)
		wantErr(t, err, store.ErrNotFound, "a deleted user's "+kind)
		if _, err := s.GetGrant(ctx(), kind, "g-mike", ts); err != nil {
			t.Errorf("another user's %s went too: %v", kind, err)
		}
	}
	_, err := s.GetChallenge(ctx(), "c-lena")
	wantErr(t, err, store.ErrNotFound, "challenge of a deleted user")
	if l, _ := s.GetPushLimit(ctx(), "lena"); l != (store.PushLimit{User: "lena"}) {
		t.Errorf("push limit of a deleted user remains: %+v", l)
	}
	if as, _ := s.ListActivations(ctx(), "lena"); len(as) != 0 {
		t.Errorf("activations of a deleted user remain: %+v", as)
	}
	// The other user keeps everything.
	getChallenge(t, s, "c-mike")
	if l, _ := s.GetPushLimit(ctx(), "mike"); l.Failures != 2 {
		t.Errorf("another user's push limit went too: %+v", l)
	}
	if as, _ := s.ListActivations(ctx(), "mike"); len(as) != 1 {
		t.Errorf("another user's activations went too: %+v", as)
	}
	// A directory user with only a push limit has something to delete.
	_, err = s.UpdatePushLimit(ctx(), "ldapuser", func(l store.PushLimit) (store.PushLimit, error) { l.Failures = 1; return l, nil })
	must(t, err, "push limit of a directory user")
	must(t, s.DeleteUser(ctx(), "ldapuser"), "delete a directory user's push limit")
	wantErr(t, s.DeleteUser(ctx(), "ldapuser"), store.ErrNotFound, "delete when nothing is left")
}

func testAuditBatch(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	got, err := s.AppendAuditBatch(ctx(), nil)
	must(t, err, "empty batch")
	if len(got) != 0 {
		t.Fatalf("empty batch appended %d events", len(got))
	}
	var all []store.AuditEvent
	single := func(e store.AuditEvent) {
		t.Helper()
		e, err := s.AppendAudit(ctx(), e)
		must(t, err, "append")
		all = append(all, e)
	}
	batch := func(evs ...store.AuditEvent) {
		t.Helper()
		out, err := s.AppendAuditBatch(ctx(), evs)
		must(t, err, "append batch")
		if len(out) != len(evs) {
			t.Fatalf("batch of %d returned %d events", len(evs), len(out))
		}
		all = append(all, out...)
	}
	single(event(1))
	batch(event(2), event(3), event(4))
	batch(event(5))
	single(event(6))
	// More rows than one INSERT takes (sqlstore writes 200 a statement).
	var big []store.AuditEvent
	for i := 7; i <= 456; i++ {
		big = append(big, event(i))
	}
	batch(big...)
	single(event(457))
	for i, e := range all {
		if e.Seq != int64(i+1) || !e.Time.Equal(event(i+1).Time) || e.Subject != event(i+1).Subject {
			t.Fatalf("event %d: seq %d subject %q", i+1, e.Seq, e.Subject)
		}
		if i > 0 && !bytes.Equal(e.PrevHash, all[i-1].Hash) {
			t.Fatalf("event %d does not chain to %d", e.Seq, all[i-1].Seq)
		}
		if !bytes.Equal(e.Hash, store.ChainHash(AuditKey(), e.PrevHash, e)) {
			t.Fatalf("event %d: returned hash does not match its content", e.Seq)
		}
	}
	rep := verify(t, s)
	if !rep.OK() || rep.Events != int64(len(all)) || rep.Head.Seq != int64(len(all)) || !bytes.Equal(rep.Head.Hash, all[len(all)-1].Hash) {
		t.Fatalf("chain after batches: events %d head %d problems %v", rep.Events, rep.Head.Seq, rep.Problems)
	}
}

func testAuditBatchAtomic(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	appendN(t, s, 2)
	_, err := s.AppendAuditBatch(ctx(), []store.AuditEvent{event(3), {Action: "no time"}, event(5)})
	wantErr(t, err, store.ErrInvalid, "batch with an invalid event")
	head, err := s.AuditHead(ctx())
	must(t, err, "head")
	if head.Seq != 2 {
		t.Fatalf("a refused batch moved the head to %d", head.Seq)
	}
	if rep := verify(t, s); !rep.OK() || rep.Events != 2 {
		t.Fatalf("chain after a refused batch: %+v", rep)
	}
}

func testAuditBatchConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	const n, size = 16, 5
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		if i%4 < 2 {
			for j := range size {
				if _, err := s.AppendAudit(ctx(), event(i*size+j)); err != nil {
					return err
				}
			}
			return nil
		}
		batch := make([]store.AuditEvent, size)
		for j := range batch {
			batch[j] = event(i*size + j)
		}
		_, err := s.AppendAuditBatch(ctx(), batch)
		return err
	})
	if ok != n {
		t.Fatalf("concurrent appends failed: %v", errs)
	}
	if rep := verify(t, a); !rep.OK() || rep.Events != n*size {
		t.Fatalf("chain after concurrent batches and single appends: %+v", rep)
	}
}
