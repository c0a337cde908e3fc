package storetest

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

func key(id string, purpose store.KeyPurpose, alg string) store.SigningKey {
	return store.SigningKey{ID: id, Purpose: purpose, Algorithm: alg, PublicDER: []byte("pub-" + id),
		SealedPriv: []byte("sealed-" + id), Status: store.KeyActive, CreatedAt: ts}
}

func testKeysOneActive(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateSigningKey(ctx(), key("k1", store.PurposeOIDC, "ES256")), "first")
	wantErr(t, s.CreateSigningKey(ctx(), key("k2", store.PurposeOIDC, "ES256")), store.ErrConflict, "second active of same purpose and alg")
	must(t, s.CreateSigningKey(ctx(), key("k3", store.PurposeOIDC, "RS256")), "other alg")
	must(t, s.CreateSigningKey(ctx(), key("k4", store.PurposePush, "EdDSA")), "other purpose")
	keys, err := s.ListSigningKeys(ctx())
	must(t, err, "list")
	if len(keys) != 3 {
		t.Fatalf("list = %d keys, want 3", len(keys))
	}
	for _, k := range keys {
		if k.ID == "k1" && (!bytes.Equal(k.SealedPriv, []byte("sealed-k1")) || !bytes.Equal(k.PublicDER, []byte("pub-k1")) || !k.CreatedAt.Equal(ts)) {
			t.Fatalf("round trip: %+v", k)
		}
	}
}

func testKeysRotate(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateSigningKey(ctx(), key("old", store.PurposePush, "EdDSA")), "create")
	must(t, s.CreateSigningKey(ctx(), key("other", store.PurposeOIDC, "EdDSA")), "create other purpose")
	next := key("new", store.PurposePush, "EdDSA")
	next.CreatedAt = ts.Add(time.Hour)
	until := next.CreatedAt.Add(7 * 24 * time.Hour)
	retired, err := s.RotateSigningKey(ctx(), next, until)
	must(t, err, "rotate")
	if len(retired) != 1 || retired[0].ID != "old" || retired[0].Status != store.KeyRetired || !retired[0].VerifyUntil.Equal(until) || !retired[0].RetiredAt.Equal(next.CreatedAt) {
		t.Fatalf("retired = %+v", retired)
	}
	keys, _ := s.ListSigningKeys(ctx())
	status := map[string]store.KeyStatus{}
	for _, k := range keys {
		status[k.ID] = k.Status
	}
	if status["old"] != store.KeyRetired || status["new"] != store.KeyActive || status["other"] != store.KeyActive {
		t.Fatalf("statuses after rotation: %v", status)
	}
	if keys[0].ID != "new" {
		t.Fatalf("list is not newest first: %s first", keys[0].ID)
	}
}

// testKeysEndorsement: a rotation stores the new key's endorsement with
// it; listing returns it; a key retired later keeps its own; keys without
// one list none.
func testKeysEndorsement(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateSigningKey(ctx(), key("k1", store.PurposePush, "EdDSA")), "create")
	must(t, s.CreateSigningKey(ctx(), key("o1", store.PurposeOIDC, "ES256")), "create other purpose")
	k2 := key("k2", store.PurposePush, "EdDSA")
	k2.CreatedAt, k2.Endorsement = ts.Add(time.Hour), "k1-endorses-k2.payload.sig"
	retired, err := s.RotateSigningKey(ctx(), k2, ts.Add(48*time.Hour))
	must(t, err, "rotate to k2")
	if len(retired) != 1 || retired[0].ID != "k1" || retired[0].Endorsement != "" {
		t.Fatalf("retired by the first rotation = %+v, want k1 without an endorsement", retired)
	}
	k3 := key("k3", store.PurposePush, "EdDSA")
	k3.CreatedAt, k3.Endorsement = ts.Add(2*time.Hour), "k2-endorses-k3.payload.sig"
	retired, err = s.RotateSigningKey(ctx(), k3, ts.Add(49*time.Hour))
	must(t, err, "rotate to k3")
	if len(retired) != 1 || retired[0].ID != "k2" || retired[0].Endorsement != k2.Endorsement {
		t.Fatalf("retired by the second rotation = %+v, want k2 with its endorsement", retired)
	}
	keys, err := s.ListSigningKeys(ctx())
	must(t, err, "list")
	got := map[string]string{}
	for _, k := range keys {
		got[k.ID] = k.Endorsement
	}
	want := map[string]string{"k1": "", "k2": k2.Endorsement, "k3": k3.Endorsement, "o1": ""}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
	for id, e := range want {
		if g, ok := got[id]; !ok || g != e {
			t.Errorf("key %s lists endorsement %q, want %q", id, g, e)
		}
	}
}

func testKeysConcurrentCreate(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	ok, errs := race(10, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		return s.CreateSigningKey(ctx(), key(fmt.Sprintf("k%d", i), store.PurposeSAML, "RS256"))
	})
	if ok != 1 {
		t.Fatalf("%d nodes created an active key at once, want exactly 1 (errors: %v)", ok, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrConflict, "losing creator")
	}
}

func event(i int) store.AuditEvent {
	return store.AuditEvent{Time: ts.Add(time.Duration(i) * time.Second), Actor: "cli:root", Action: "user.create",
		Subject: fmt.Sprintf("user%d", i), Channel: "cli", ClientIP: "127.0.0.1", Result: store.ResultSuccess,
		Reason: "created", Details: map[string]string{"i": fmt.Sprint(i), "b": "x"}}
}

func appendN(t *testing.T, s store.Store, n int) []store.AuditEvent {
	t.Helper()
	var out []store.AuditEvent
	for i := 1; i <= n; i++ {
		e, err := s.AppendAudit(ctx(), event(i))
		must(t, err, "append")
		out = append(out, e)
	}
	return out
}

func verify(t *testing.T, s store.Store) store.ChainReport {
	t.Helper()
	rep, err := store.VerifyChain(ctx(), s, AuditKey(), 0)
	must(t, err, "verify")
	return rep
}

func testAuditChain(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	if rep := verify(t, s); !rep.OK() || rep.Events != 0 {
		t.Fatalf("empty log: %+v", rep)
	}
	evs := appendN(t, s, 5)
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		if i > 0 && !bytes.Equal(e.PrevHash, evs[i-1].Hash) {
			t.Fatalf("event %d does not chain to %d", e.Seq, evs[i-1].Seq)
		}
	}
	list, err := s.ListAudit(ctx(), 2, 2)
	must(t, err, "list")
	if len(list) != 2 || list[0].Seq != 3 || list[1].Seq != 4 || list[0].Details["i"] != "3" || !list[0].Time.Equal(event(3).Time) {
		t.Fatalf("list after 2, limit 2 = %+v", list)
	}
	if rep := verify(t, s); !rep.OK() || rep.Events != 5 || rep.Head.Seq != 5 {
		t.Fatalf("intact chain reported %+v", rep)
	}
	_, err = s.AppendAudit(ctx(), store.AuditEvent{Action: "x"})
	wantErr(t, err, store.ErrInvalid, "event without time")
	_, err = store.VerifyChain(ctx(), s, nil, 0)
	wantErr(t, err, store.ErrInvalid, "verify without a key")
}

func testAuditConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	const n = 40
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.AppendAudit(ctx(), event(i))
		return err
	})
	if ok != n {
		t.Fatalf("concurrent appends failed: %v", errs)
	}
	if rep := verify(t, a); !rep.OK() || rep.Events != n {
		t.Fatalf("chain after concurrent appends: %+v", rep)
	}
}

func wantProblemAt(t *testing.T, rep store.ChainReport, seq int64, substr string) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Seq == seq && strings.Contains(p.Reason, substr) {
			return
		}
	}
	t.Fatalf("no problem at seq %d mentioning %q; report: %+v", seq, substr, rep.Problems)
}

func testAuditModified(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	appendN(t, s, 5)
	db := rawSQL(t, s)
	if _, err := db.ExecContext(ctx(), "UPDATE audit_events SET result = 'success', reason = 'nothing to see' WHERE seq = 3"); err != nil {
		t.Fatal(err)
	}
	wantProblemAt(t, verify(t, s), 3, "modified")
}

func testAuditDeletedMiddle(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	appendN(t, s, 5)
	if _, err := rawSQL(t, s).ExecContext(ctx(), "DELETE FROM audit_events WHERE seq = 2"); err != nil {
		t.Fatal(err)
	}
	wantProblemAt(t, verify(t, s), 2, "missing")
}

// testAuditRecomputedWithoutKey: an attacker with write access to the
// database changes an event and recomputes the rest of the chain and the
// head, but without the chain key; verification still fails there.
func testAuditRecomputedWithoutKey(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	events := appendN(t, s, 5)
	db := rawSQL(t, s)
	wrongKey := bytes.Repeat([]byte{7}, store.AuditKeySize)
	prev := events[1].Hash
	for _, e := range events[2:] {
		if e.Seq == 3 {
			e.Reason = "rewritten"
		}
		e.PrevHash = prev
		e.Hash = store.ChainHash(wrongKey, prev, e)
		if _, err := db.ExecContext(ctx(), "UPDATE audit_events SET reason = $1, prev_hash = $2, hash = $3 WHERE seq = $4", e.Reason, e.PrevHash, e.Hash, e.Seq); err != nil {
			t.Fatal(err)
		}
		prev = e.Hash
	}
	if _, err := db.ExecContext(ctx(), "UPDATE audit_head SET hash = $1 WHERE id = 1", prev); err != nil {
		t.Fatal(err)
	}
	wantProblemAt(t, verify(t, s), 3, "modified")
}

func testAuditDeletedTail(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	appendN(t, s, 5)
	if _, err := rawSQL(t, s).ExecContext(ctx(), "DELETE FROM audit_events WHERE seq = 5"); err != nil {
		t.Fatal(err)
	}
	wantProblemAt(t, verify(t, s), 5, "deleted from the end")
}

func totp(userName string) store.TOTP {
	return store.TOTP{User: userName, SealedSecret: []byte("sealed"), Algorithm: "SHA1", Digits: 6, Period: 30 * time.Second, LastCounter: -1, CreatedAt: ts}
}

func testTOTPCounter(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	wantErr(t, s.UseTOTPCounter(ctx(), "nina", 5), store.ErrNotFound, "no token")
	must(t, s.PutTOTP(ctx(), totp("nina")), "put")
	got, err := s.GetTOTP(ctx(), "nina")
	must(t, err, "get")
	if got.Period != 30*time.Second || got.Digits != 6 || got.LastCounter != -1 || !bytes.Equal(got.SealedSecret, []byte("sealed")) {
		t.Fatalf("round trip: %+v", got)
	}
	must(t, s.UseTOTPCounter(ctx(), "nina", 100), "first use")
	wantErr(t, s.UseTOTPCounter(ctx(), "nina", 100), store.ErrUsed, "same step again")
	wantErr(t, s.UseTOTPCounter(ctx(), "nina", 99), store.ErrUsed, "older step")
	must(t, s.UseTOTPCounter(ctx(), "nina", 101), "newer step")
	must(t, s.PutTOTP(ctx(), totp("nina")), "re-enroll")
	must(t, s.UseTOTPCounter(ctx(), "nina", 1), "re-enrolled token starts over")
	must(t, s.DeleteTOTP(ctx(), "nina"), "delete")
	wantErr(t, s.DeleteTOTP(ctx(), "nina"), store.ErrNotFound, "delete twice")
}

func testTOTPConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	must(t, a.PutTOTP(ctx(), totp("oscar")), "put")
	ok, errs := race(20, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		return s.UseTOTPCounter(ctx(), "oscar", 7)
	})
	if ok != 1 {
		t.Fatalf("%d verifiers accepted the same code, want 1 (%v)", ok, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrUsed, "losing verifier")
	}
}

func bypass(id, userName string, expires time.Time) store.BypassCode {
	return store.BypassCode{ID: id, User: userName, Hash: []byte("h-" + id), CreatedBy: "cli:root", CreatedAt: ts, ExpiresAt: expires}
}

func testBypassSingleUse(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateBypassCode(ctx(), bypass("c1", "paul", ts.Add(time.Hour))), "create")
	must(t, s.CreateBypassCode(ctx(), bypass("c2", "paul", ts.Add(time.Minute))), "create")
	used, err := s.UseBypassCode(ctx(), "c1", ts.Add(time.Second))
	must(t, err, "use")
	if used.User != "paul" || !used.UsedAt.Equal(ts.Add(time.Second)) {
		t.Fatalf("used code = %+v", used)
	}
	_, err = s.UseBypassCode(ctx(), "c1", ts.Add(2*time.Second))
	wantErr(t, err, store.ErrUsed, "second use")
	_, err = s.UseBypassCode(ctx(), "c2", ts.Add(time.Minute))
	wantErr(t, err, store.ErrNotFound, "expired")
	_, err = s.UseBypassCode(ctx(), "nope", ts)
	wantErr(t, err, store.ErrNotFound, "unknown")
	codes, err := s.ListBypassCodes(ctx(), "paul")
	must(t, err, "list")
	if len(codes) != 2 {
		t.Fatalf("list = %d codes, want 2", len(codes))
	}
}

func testBypassConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o)
	must(t, a.CreateBypassCode(ctx(), bypass("cc", "quinn", ts.Add(time.Hour))), "create")
	ok, errs := race(20, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.UseBypassCode(ctx(), "cc", ts.Add(time.Second))
		return err
	})
	if ok != 1 {
		t.Fatalf("%d users of one bypass code succeeded, want 1 (%v)", ok, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrUsed, "losing user of the code")
	}
}

func testJanitor(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.UseOnce(ctx(), "n", "old", ts, ts.Add(time.Second)), "old")
	must(t, s.UseOnce(ctx(), "n", "live", ts, ts.Add(time.Hour)), "live")
	must(t, s.CreateBypassCode(ctx(), bypass("old", "rita", ts.Add(time.Second))), "old code")
	must(t, s.CreateBypassCode(ctx(), bypass("live", "rita", ts.Add(time.Hour))), "live code")
	n, err := s.DeleteExpired(ctx(), ts.Add(time.Minute))
	must(t, err, "delete expired")
	if n != 2 {
		t.Fatalf("deleted %d records, want 2", n)
	}
	// The live entry is still there: using it again is a replay.
	wantErr(t, s.UseOnce(ctx(), "n", "live", ts.Add(time.Minute), ts.Add(time.Hour)), store.ErrUsed, "live entry kept")
	codes, _ := s.ListBypassCodes(ctx(), "rita")
	if len(codes) != 1 || codes[0].ID != "live" {
		t.Fatalf("codes after janitor: %+v", codes)
	}
}

// testAuditHostileText: bytes from a packet or a form (invalid UTF-8, NUL)
// are stored as they are hashed, so the chain still verifies, and
// PostgreSQL does not refuse the event.
func testAuditHostileText(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	e := event(1)
	e.Subject, e.Reason = "al\x00ice", "bad \xff\xfe bytes"
	e.Details = map[string]string{"nas\xff": "id\x00\xc3"}
	got, err := s.AppendAudit(ctx(), e)
	must(t, err, "append hostile text")
	if got.Subject != "al\uFFFDice" || got.Details["nas\uFFFD"] != "id\uFFFD\uFFFD" {
		t.Fatalf("stored as %q %q", got.Subject, got.Details)
	}
	if rep := verify(t, s); !rep.OK() || rep.Events != 1 {
		t.Fatalf("chain after hostile text: %+v", rep)
	}
}
