package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// grant is a record created at ts, expiring an hour later.
func grant(kind, id, family, subject string) store.Grant {
	return store.Grant{Kind: kind, ID: id, Family: family, Subject: subject, Data: []byte("data-" + id),
		CreatedAt: ts, ExpiresAt: ts.Add(time.Hour)}
}

// binaryData is every byte value, NULs and invalid UTF-8 included.
func binaryData() []byte {
	b := []byte{0x00}
	for i := range 256 {
		b = append(b, byte(i))
	}
	return append(b, 0x00, 0x00)
}

func sameGrant(a, b store.Grant) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.Family == b.Family && a.Subject == b.Subject &&
		bytes.Equal(a.Data, b.Data) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.UsedAt.Equal(b.UsedAt)
}

func getGrant(t *testing.T, s store.Store, kind, id string, now time.Time) store.Grant {
	t.Helper()
	g, err := s.GetGrant(ctx(), kind, id, now)
	must(t, err, "get "+kind+" grant "+id)
	return g
}

func putGrants(t *testing.T, s store.Store, gs ...store.Grant) {
	t.Helper()
	for _, g := range gs {
		must(t, s.PutGrant(ctx(), g), "put "+g.Kind+" grant "+g.ID)
	}
}

// wantGrants checks which of gs are still stored (read at ts, before any
// of them expires): those whose ID is in kept, and no others.
func wantGrants(t *testing.T, s store.Store, gs []store.Grant, kept ...string) {
	t.Helper()
	for _, g := range gs {
		_, err := s.GetGrant(ctx(), g.Kind, g.ID, ts)
		switch {
		case slices.Contains(kept, g.ID) && err != nil:
			t.Errorf("%s grant %s: %v, want it kept", g.Kind, g.ID, err)
		case !slices.Contains(kept, g.ID) && !errors.Is(err, store.ErrNotFound):
			t.Errorf("%s grant %s: got %v, want it deleted (ErrNotFound)", g.Kind, g.ID, err)
		}
	}
}

func testGrantsCRUD(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	now := ts.Add(time.Minute)
	_, err := s.GetGrant(ctx(), store.GrantSession, "s1", now)
	wantErr(t, err, store.ErrNotFound, "get before put")

	g := grant(store.GrantSession, "s1", "fam-1", "alice")
	g.Data = binaryData()
	g.CreatedAt = ts.Add(1500 * time.Microsecond) // microseconds are kept
	must(t, s.PutGrant(ctx(), g), "put")
	want := g
	want.Data = binaryData()
	g.Data[1] ^= 0xff // the store keeps its own copy
	got := getGrant(t, s, store.GrantSession, "s1", now)
	if !sameGrant(got, want) || !got.UsedAt.IsZero() {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}
	got.Data[2] ^= 0xff
	if again := getGrant(t, s, store.GrantSession, "s1", now); !bytes.Equal(again.Data, binaryData()) {
		t.Fatalf("changing returned data changed the stored record: %q", again.Data)
	}

	// The key is taken; the refused record changes nothing.
	dup := grant(store.GrantSession, "s1", "fam-other", "mallory")
	wantErr(t, s.PutGrant(ctx(), dup), store.ErrConflict, "duplicate kind and id")
	if got := getGrant(t, s, store.GrantSession, "s1", now); !sameGrant(got, want) {
		t.Fatalf("a refused duplicate changed the record: %+v", got)
	}
	// The same id under another kind is another record.
	code := grant(store.GrantCode, "s1", "fam-1", "alice")
	must(t, s.PutGrant(ctx(), code), "same id, other kind")
	if got := getGrant(t, s, store.GrantCode, "s1", now); !sameGrant(got, code) {
		t.Fatalf("same id, other kind: got %+v, want %+v", got, code)
	}
	if got := getGrant(t, s, store.GrantSession, "s1", now); !sameGrant(got, want) {
		t.Fatalf("putting another kind changed the record: %+v", got)
	}

	// No data and empty data come back empty.
	noData, emptyData := grant(store.GrantLogin, "nil", "", ""), grant(store.GrantLogin, "empty", "", "")
	noData.Data, emptyData.Data = nil, []byte{}
	putGrants(t, s, noData, emptyData)
	for _, id := range []string{"nil", "empty"} {
		if got := getGrant(t, s, store.GrantLogin, id, now); len(got.Data) != 0 || got.Kind != store.GrantLogin || got.ID != id {
			t.Fatalf("grant with %s data came back as %+v", id, got)
		}
	}

	// UpdateGrant writes Data, Subject, Family and ExpiresAt, and keeps the
	// rest whatever fn returns.
	later := ts.Add(2*time.Hour + 7*time.Microsecond)
	want.Data, want.Subject, want.Family, want.ExpiresAt = []byte{0, 1, 0, 0xff}, "bob", "fam-2", later
	upd, err := s.UpdateGrant(ctx(), store.GrantSession, "s1", now, func(old store.Grant) (store.Grant, error) {
		if !bytes.Equal(old.Data, binaryData()) || old.Subject != "alice" || old.Family != "fam-1" || !old.CreatedAt.Equal(g.CreatedAt) {
			t.Errorf("fn read %+v", old)
		}
		old.Data, old.Subject, old.Family, old.ExpiresAt = []byte{0, 1, 0, 0xff}, "bob", "fam-2", later
		old.Kind, old.ID, old.CreatedAt, old.UsedAt = store.GrantCode, "moved", ts.Add(-time.Hour), now
		return old, nil
	})
	must(t, err, "update")
	if !sameGrant(upd, want) {
		t.Fatalf("update returned\n %+v\nwant\n %+v", upd, want)
	}
	if got := getGrant(t, s, store.GrantSession, "s1", now); !sameGrant(got, want) {
		t.Fatalf("after update:\n got %+v\nwant %+v", got, want)
	}
	_, err = s.GetGrant(ctx(), store.GrantCode, "moved", now)
	wantErr(t, err, store.ErrNotFound, "kind and id fn returned")
	if got := getGrant(t, s, store.GrantCode, "s1", now); !sameGrant(got, code) {
		t.Fatalf("updating one kind changed the other: %+v", got)
	}
	// The UsedAt fn returned was not written: the record is still unused.
	if _, err := s.ConsumeGrant(ctx(), store.GrantSession, "s1", now); err != nil {
		t.Fatalf("consume after an update that set UsedAt: %v (UpdateGrant must keep UsedAt)", err)
	}
	// Data can be cleared.
	_, err = s.UpdateGrant(ctx(), store.GrantSession, "s1", now, func(g store.Grant) (store.Grant, error) { g.Data = nil; return g, nil })
	must(t, err, "clear data")
	if got := getGrant(t, s, store.GrantSession, "s1", now); len(got.Data) != 0 || got.Subject != "bob" {
		t.Fatalf("after clearing data: %+v", got)
	}
	_, err = s.UpdateGrant(ctx(), store.GrantSession, "nope", now, func(g store.Grant) (store.Grant, error) {
		t.Error("fn called for a missing record")
		return g, nil
	})
	wantErr(t, err, store.ErrNotFound, "update missing")

	must(t, s.DeleteGrant(ctx(), store.GrantSession, "s1"), "delete")
	_, err = s.GetGrant(ctx(), store.GrantSession, "s1", now)
	wantErr(t, err, store.ErrNotFound, "get after delete")
	wantErr(t, s.DeleteGrant(ctx(), store.GrantSession, "s1"), store.ErrNotFound, "delete twice")
	wantErr(t, s.DeleteGrant(ctx(), store.GrantSession, "nope"), store.ErrNotFound, "delete missing")
	if got := getGrant(t, s, store.GrantCode, "s1", now); !sameGrant(got, code) {
		t.Fatalf("deleting one kind deleted the other: %+v", got)
	}
}

func testGrantsConsumeOnce(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	g := grant(store.GrantCode, "c1", "fam-c1", "alice")
	g.Data = binaryData()
	putGrants(t, s, g, grant(store.GrantRefreshToken, "c1", "fam-c1", "alice"))
	t1, t2 := ts.Add(time.Second+3*time.Microsecond), ts.Add(2*time.Second)
	want := g
	want.UsedAt = t1

	got, err := s.ConsumeGrant(ctx(), store.GrantCode, "c1", t1)
	must(t, err, "consume")
	if !sameGrant(got, want) {
		t.Fatalf("consume returned\n %+v\nwant\n %+v", got, want)
	}
	// A replay gets the record, with its family, and ErrUsed.
	again, err := s.ConsumeGrant(ctx(), store.GrantCode, "c1", t2)
	wantErr(t, err, store.ErrUsed, "second consume")
	if !sameGrant(again, want) {
		t.Fatalf("second consume returned\n %+v\nwant the record used at the first\n %+v", again, want)
	}
	// A used record is still returned by GetGrant.
	if got := getGrant(t, s, store.GrantCode, "c1", t2); !sameGrant(got, want) {
		t.Fatalf("get of a used record:\n got %+v\nwant %+v", got, want)
	}
	// Updating a used record keeps it used.
	upd, err := s.UpdateGrant(ctx(), store.GrantCode, "c1", t2, func(g store.Grant) (store.Grant, error) {
		g.Data, g.UsedAt = []byte("new"), time.Time{}
		return g, nil
	})
	must(t, err, "update a used record")
	if !upd.UsedAt.Equal(t1) {
		t.Fatalf("update of a used record returned UsedAt %v, want %v", upd.UsedAt, t1)
	}
	got, err = s.ConsumeGrant(ctx(), store.GrantCode, "c1", t2)
	wantErr(t, err, store.ErrUsed, "consume after the update")
	if !got.UsedAt.Equal(t1) || string(got.Data) != "new" {
		t.Fatalf("after the update: %+v", got)
	}
	// Another kind with the same id is unused.
	r, err := s.ConsumeGrant(ctx(), store.GrantRefreshToken, "c1", t2)
	must(t, err, "consume the same id of another kind")
	if r.Kind != store.GrantRefreshToken || !r.UsedAt.Equal(t2) {
		t.Fatalf("consumed %+v", r)
	}
	_, err = s.ConsumeGrant(ctx(), store.GrantCode, "nope", t1)
	wantErr(t, err, store.ErrNotFound, "consume missing")
	_, err = s.ConsumeGrant(ctx(), store.GrantAccessToken, "c1", t1)
	wantErr(t, err, store.ErrNotFound, "consume an id under a kind it does not have")
}

// testGrantsConcurrentConsume: sixteen redemptions of one code at once on
// two nodes: one wins, each other gets ErrUsed and the record as the
// winner left it.
func testGrantsConcurrentConsume(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	putGrants(t, a, grant(store.GrantCode, "c1", "fam-c1", "alice"))
	const n = 16
	if ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.GetGrant(ctx(), store.GrantCode, "c1", ts)
		return err
	}); ok != n {
		t.Fatalf("warming up: %v", errs)
	}
	at := func(i int) time.Time { return ts.Add(time.Duration(i+1) * time.Millisecond) }
	got := make([]store.Grant, n)
	results := make([]error, n)
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		got[i], results[i] = s.ConsumeGrant(ctx(), store.GrantCode, "c1", at(i))
		return results[i]
	})
	if ok != 1 {
		t.Fatalf("%d of %d concurrent consumes succeeded, want 1 (%v)", ok, n, errs)
	}
	winner := slices.Index(results, nil)
	usedAt := at(winner)
	if !got[winner].UsedAt.Equal(usedAt) {
		t.Fatalf("the winner got UsedAt %v, want %v", got[winner].UsedAt, usedAt)
	}
	for i, err := range results {
		if i == winner {
			continue
		}
		wantErr(t, err, store.ErrUsed, fmt.Sprintf("losing consume %d", i))
		if got[i].ID != "c1" || got[i].Family != "fam-c1" || !got[i].UsedAt.Equal(usedAt) {
			t.Fatalf("losing consume %d returned %+v, want the record used at %v", i, got[i], usedAt)
		}
	}
	if stored := getGrant(t, b, store.GrantCode, "c1", ts); !stored.UsedAt.Equal(usedAt) {
		t.Fatalf("stored UsedAt %v, want the winner's %v", stored.UsedAt, usedAt)
	}
}

func testGrantsExpiry(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	g := grant(store.GrantAuthRequest, "a1", "", "")
	g.ExpiresAt = ts.Add(time.Minute)
	putGrants(t, s, g)
	exp := g.ExpiresAt
	if got := getGrant(t, s, g.Kind, "a1", exp.Add(-time.Microsecond)); !sameGrant(got, g) {
		t.Fatalf("just before expiry: %+v", got)
	}
	for _, now := range []time.Time{exp, exp.Add(time.Hour)} {
		what := fmt.Sprintf("at expiry+%v", now.Sub(exp))
		_, err := s.GetGrant(ctx(), g.Kind, "a1", now)
		wantErr(t, err, store.ErrNotFound, "get "+what)
		_, err = s.UpdateGrant(ctx(), g.Kind, "a1", now, func(g store.Grant) (store.Grant, error) {
			t.Errorf("update %s: fn called for an expired record", what)
			g.Data, g.ExpiresAt = []byte("revived"), now.Add(time.Hour)
			return g, nil
		})
		wantErr(t, err, store.ErrNotFound, "update "+what)
		_, err = s.ConsumeGrant(ctx(), g.Kind, "a1", now)
		wantErr(t, err, store.ErrNotFound, "consume "+what)
	}
	// None of that changed it: read before the expiry it is as put, unused.
	if got := getGrant(t, s, g.Kind, "a1", exp.Add(-time.Microsecond)); !sameGrant(got, g) {
		t.Fatalf("after the late calls: %+v, want %+v", got, g)
	}
	// Expired but not swept yet: the key is still taken.
	wantErr(t, s.PutGrant(ctx(), grant(g.Kind, "a1", "", "")), store.ErrConflict, "put over an expired record")
	// Deleted, it is free.
	must(t, s.DeleteGrant(ctx(), g.Kind, "a1"), "delete an expired record")
	must(t, s.PutGrant(ctx(), grant(g.Kind, "a1", "", "")), "put after delete")

	// A used record that expires is gone, not "used".
	c := grant(store.GrantCode, "c1", "fam", "alice")
	c.ExpiresAt = ts.Add(time.Minute)
	putGrants(t, s, c)
	_, err := s.ConsumeGrant(ctx(), c.Kind, "c1", ts)
	must(t, err, "consume")
	_, err = s.ConsumeGrant(ctx(), c.Kind, "c1", c.ExpiresAt)
	wantErr(t, err, store.ErrNotFound, "consume a used record at its expiry")

	// UpdateGrant moves the expiry both ways.
	l := grant(store.GrantLogin, "l1", "", "")
	l.ExpiresAt = ts.Add(time.Minute)
	putGrants(t, s, l)
	_, err = s.UpdateGrant(ctx(), l.Kind, "l1", ts, func(g store.Grant) (store.Grant, error) { g.ExpiresAt = ts.Add(time.Hour); return g, nil })
	must(t, err, "extend")
	getGrant(t, s, l.Kind, "l1", ts.Add(30*time.Minute))
	_, err = s.UpdateGrant(ctx(), l.Kind, "l1", ts, func(g store.Grant) (store.Grant, error) { g.ExpiresAt = ts.Add(time.Second); return g, nil })
	must(t, err, "shorten")
	_, err = s.GetGrant(ctx(), l.Kind, "l1", ts.Add(time.Second))
	wantErr(t, err, store.ErrNotFound, "get after the expiry was shortened")
}

// testGrantsUpdateNoLostUpdates: writers on two nodes increment a counter
// in Data while another consumes the record; every increment and the use
// are kept.
func testGrantsUpdateNoLostUpdates(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o) // two nodes
	g := grant(store.GrantSession, "s1", "", "kate")
	g.Data = []byte("0")
	putGrants(t, a, g)
	const writers, each = 8, 5
	ok, errs := race(writers+1, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		if i == writers {
			_, err := s.ConsumeGrant(ctx(), store.GrantSession, "s1", ts.Add(time.Second))
			return err
		}
		for range each {
			if _, err := s.UpdateGrant(ctx(), store.GrantSession, "s1", ts, func(g store.Grant) (store.Grant, error) {
				n, err := strconv.Atoi(string(g.Data))
				if err != nil {
					return g, err
				}
				g.Data = []byte(strconv.Itoa(n + 1))
				return g, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if ok != writers+1 {
		t.Fatalf("concurrent updates failed: %v", errs)
	}
	got := getGrant(t, b, store.GrantSession, "s1", ts)
	if string(got.Data) != strconv.Itoa(writers*each) {
		t.Fatalf("lost updates: counter %q, want %d", got.Data, writers*each)
	}
	if !got.UsedAt.Equal(ts.Add(time.Second)) {
		t.Fatalf("the concurrent updates lost the use: UsedAt %v", got.UsedAt)
	}
}

func testGrantsUpdateAborts(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	g := grant(store.GrantLogin, "l1", "fam", "alice")
	putGrants(t, s, g)
	boom := errors.New("boom")
	_, err := s.UpdateGrant(ctx(), store.GrantLogin, "l1", ts, func(g store.Grant) (store.Grant, error) {
		g.Data, g.Subject, g.Family, g.ExpiresAt = []byte("changed"), "mallory", "other", ts.Add(48*time.Hour)
		return g, boom
	})
	if err != boom { // "returned as is": the same value, not wrapped
		t.Fatalf("fn's error came back as %v, want boom as is", err)
	}
	if got := getGrant(t, s, store.GrantLogin, "l1", ts); !sameGrant(got, g) {
		t.Fatalf("aborted update was written:\n got %+v\nwant %+v", got, g)
	}
}

func testGrantsRevokeFamily(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	gs := []store.Grant{
		grant(store.GrantCode, "c1", "fam-a", "alice"),
		grant(store.GrantAccessToken, "a1", "fam-a", "alice"),
		grant(store.GrantRefreshToken, "r1", "fam-a", "alice"),
		grant(store.GrantCode, "c2", "fam-b", "alice"),
		grant(store.GrantAccessToken, "a2", "fam-b", "bob"),
		grant(store.GrantSession, "s1", "", "alice"),
		grant(store.GrantLogin, "l1", "", ""),
	}
	gs[2].ExpiresAt = ts.Add(time.Second) // expired at the revocation below, not swept: still a record
	putGrants(t, s, gs...)
	n, err := s.RevokeFamily(ctx(), "fam-a")
	must(t, err, "revoke fam-a")
	if n != 3 {
		t.Fatalf("revoking fam-a deleted %d records, want 3", n)
	}
	wantGrants(t, s, gs, "c2", "a2", "s1", "l1")
	// The records are gone, not hidden: their keys are free.
	must(t, s.PutGrant(ctx(), grant(store.GrantRefreshToken, "r1", "", "")), "put over a revoked key")
	n, err = s.RevokeFamily(ctx(), "fam-a")
	must(t, err, "revoke again")
	if n != 0 {
		t.Fatalf("revoking fam-a again deleted %d records", n)
	}
	n, err = s.RevokeFamily(ctx(), "")
	must(t, err, "revoke the empty family")
	if n != 0 {
		t.Fatalf("revoking the empty family deleted %d records, want none", n)
	}
	wantGrants(t, s, gs[3:], "c2", "a2", "s1", "l1")
}

func testGrantsRevokeSubject(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	gs := []store.Grant{
		grant(store.GrantSession, "s1", "", "alice"),
		grant(store.GrantAccessToken, "a1", "fam-1", "alice"),
		grant(store.GrantRefreshToken, "r1", "fam-1", "alice"),
		grant(store.GrantLogin, "l1", "", "alice"),
		grant(store.GrantCode, "c1", "fam-2", "alice"),
		grant(store.GrantSession, "s2", "", "bob"),
		grant(store.GrantLogin, "l2", "", ""),
		grant(store.GrantSession, "s3", "", "alice2"),
	}
	putGrants(t, s, gs...)
	count := func(what string, want int64, subject string, kinds ...string) {
		t.Helper()
		n, err := s.RevokeSubject(ctx(), subject, kinds...)
		must(t, err, what)
		if n != want {
			t.Fatalf("%s: deleted %d records, want %d", what, n, want)
		}
	}
	count("alice's sessions and refresh tokens", 2, "alice", store.GrantSession, store.GrantRefreshToken)
	wantGrants(t, s, gs, "a1", "l1", "c1", "s2", "l2", "s3")
	count("again, kinds repeated", 0, "alice", store.GrantRefreshToken, store.GrantSession, store.GrantSession)
	count("bob's codes", 0, "bob", store.GrantCode)
	wantGrants(t, s, gs, "a1", "l1", "c1", "s2", "l2", "s3")
	count("all of alice's", 3, "alice")
	wantGrants(t, s, gs, "s2", "l2", "s3")
	count("the empty subject", 0, "")
	count("the empty subject's logins", 0, "", store.GrantLogin)
	wantGrants(t, s, gs, "s2", "l2", "s3")
	count("all of bob's", 1, "bob")
	wantGrants(t, s, gs, "l2", "s3")
}

func testGrantsInvalid(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	for name, g := range map[string]store.Grant{
		"no kind":              grant("", "x1", "", ""),
		"no id":                grant(store.GrantSession, "", "", ""),
		"no expiry":            func() store.Grant { g := grant(store.GrantSession, "x2", "", ""); g.ExpiresAt = time.Time{}; return g }(),
		"NUL in the id":        grant(store.GrantSession, "x3\x00", "", ""),
		"invalid UTF-8 id":     grant(store.GrantSession, "x4\xff", "", ""),
		"NUL in the subject":   grant(store.GrantSession, "x5", "", "al\x00ice"),
		"invalid UTF-8 family": grant(store.GrantSession, "x6", "fam\xfe", ""),
		"NUL in the kind":      grant("session\x00", "x7", "", ""),
	} {
		if err := s.PutGrant(ctx(), g); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	// Nothing was stored: the valid keys among them are free.
	for _, id := range []string{"x2", "x5", "x6"} {
		must(t, s.PutGrant(ctx(), grant(store.GrantSession, id, "", "")), "put "+id+" after it was refused")
	}

	// A key no record can have (from a cookie, a form) finds nothing; it
	// is not a database error.
	for _, id := range []string{"x3\x00", "x4\xff", ""} {
		_, err := s.GetGrant(ctx(), store.GrantSession, id, ts)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("get %q", id))
		_, err = s.ConsumeGrant(ctx(), store.GrantSession, id, ts)
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("consume %q", id))
		_, err = s.UpdateGrant(ctx(), store.GrantSession, id, ts, func(g store.Grant) (store.Grant, error) { return g, nil })
		wantErr(t, err, store.ErrNotFound, fmt.Sprintf("update %q", id))
		wantErr(t, s.DeleteGrant(ctx(), store.GrantSession, id), store.ErrNotFound, fmt.Sprintf("delete %q", id))
	}
	for _, v := range []string{"\x00", "\xff"} {
		if n, err := s.RevokeFamily(ctx(), v); err != nil || n != 0 {
			t.Errorf("revoke family %q: %d, %v", v, n, err)
		}
		if n, err := s.RevokeSubject(ctx(), v); err != nil || n != 0 {
			t.Errorf("revoke subject %q: %d, %v", v, n, err)
		}
		// A filter of kinds no record has is not "all kinds".
		if n, err := s.RevokeSubject(ctx(), "nobody", v); err != nil || n != 0 {
			t.Errorf("revoke subject with kind %q: %d, %v", v, n, err)
		}
	}

	// A zero now would find everything unexpired, and a use at 0 reads as
	// unused: refused.
	_, err := s.GetGrant(ctx(), store.GrantSession, "x2", time.Time{})
	wantErr(t, err, store.ErrInvalid, "get at the zero time")
	_, err = s.ConsumeGrant(ctx(), store.GrantSession, "x2", time.Time{})
	wantErr(t, err, store.ErrInvalid, "consume at the zero time")
	_, err = s.UpdateGrant(ctx(), store.GrantSession, "x2", time.Time{}, func(g store.Grant) (store.Grant, error) { return g, nil })
	wantErr(t, err, store.ErrInvalid, "update at the zero time")
	if got := getGrant(t, s, store.GrantSession, "x2", ts); !got.UsedAt.IsZero() {
		t.Fatalf("a refused consume marked the record used at %v", got.UsedAt)
	}

	// An update to what PutGrant would refuse is refused, and not written.
	want := getGrant(t, s, store.GrantSession, "x2", ts)
	for name, change := range map[string]func(*store.Grant){
		"no expiry":          func(g *store.Grant) { g.ExpiresAt = time.Time{} },
		"NUL in the subject": func(g *store.Grant) { g.Subject = "a\x00" },
		"invalid family":     func(g *store.Grant) { g.Family = "\xff" },
	} {
		_, err := s.UpdateGrant(ctx(), store.GrantSession, "x2", ts, func(g store.Grant) (store.Grant, error) {
			g.Data = []byte("changed")
			change(&g)
			return g, nil
		})
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("update to %s: got %v, want ErrInvalid", name, err)
		}
	}
	if got := getGrant(t, s, store.GrantSession, "x2", ts); !sameGrant(got, want) {
		t.Fatalf("a refused update was written: %+v", got)
	}
}

// testJanitorGrants: the janitor deletes grants, used or not, from their
// expiry on, and no others.
func testJanitorGrants(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	now := ts.Add(time.Hour)
	expiring := func(kind, id string, exp time.Time) store.Grant {
		g := grant(kind, id, "fam", "alice")
		g.ExpiresAt = exp
		return g
	}
	gs := []store.Grant{
		expiring(store.GrantCode, "gone-before", now.Add(-time.Second)),
		expiring(store.GrantSession, "gone-at", now),
		expiring(store.GrantRefreshToken, "gone-used", now.Add(-time.Minute)),
		expiring(store.GrantAccessToken, "live", now.Add(time.Microsecond)),
		expiring(store.GrantCode, "live-used", now.Add(time.Hour)),
	}
	putGrants(t, s, gs...)
	for _, g := range []store.Grant{gs[2], gs[4]} {
		_, err := s.ConsumeGrant(ctx(), g.Kind, g.ID, ts)
		must(t, err, "consume "+g.ID)
	}
	n, err := s.DeleteExpired(ctx(), now)
	must(t, err, "delete expired")
	if n != 3 {
		t.Fatalf("deleted %d records, want 3", n)
	}
	wantGrants(t, s, gs, "live", "live-used")
	for _, g := range gs[:3] {
		wantErr(t, s.DeleteGrant(ctx(), g.Kind, g.ID), store.ErrNotFound, "delete swept "+g.ID)
	}
	_, err = s.ConsumeGrant(ctx(), store.GrantCode, "live-used", now)
	wantErr(t, err, store.ErrUsed, "a used record kept by the janitor")
	n, err = s.DeleteExpired(ctx(), now)
	must(t, err, "delete expired again")
	if n != 0 {
		t.Fatalf("second sweep deleted %d records", n)
	}
}
