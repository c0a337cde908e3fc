package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// openPush makes one fresh push state and returns it as two nodes: two
// stores on one database, or the same in-memory state twice.
type openPush func(t *testing.T) (a, b store.PushState)

// pushStateCases need only store.PushState, so an in-memory implementation
// runs them too (RunPushState); Run runs them on two nodes of the store.
var pushStateCases = []struct {
	name string
	fn   func(t *testing.T, open openPush)
}{
	{"Push/RoundTrip", testPushRoundTrip},
	{"Push/JoinOrSupersede", testPushJoinOrSupersede},
	{"Push/OnePendingConcurrentJoin", testPushConcurrentJoin},
	{"Push/OnePendingConcurrentSupersede", testPushConcurrentSupersede},
	{"Push/ExpiredClosedByCreate", testPushExpiredClosedByCreate},
	{"Push/CloseOnce", testPushCloseOnce},
	{"Push/CloseAfterExpiry", testPushCloseAfterExpiry},
	{"Push/AllowExpired", testPushAllowExpired},
	{"Push/ExpireWithLimit", testPushExpireWithLimit},
	{"Push/ExpireOnceAcrossNodes", testPushExpireAcrossNodes},
	{"Push/CountWindow", testPushCountWindow},
	{"Push/PendingList", testPushPendingList},
	{"Push/JoinClosedSince", testPushJoinClosedSince},
	{"Push/RecentList", testPushRecentList},
	{"Push/Purge", testPushPurge},
	{"Replay/UseOnce", testReplayUseOnce},
	{"Replay/Concurrent", testReplayConcurrent},
}

// RunPushState runs the cases of the suite that need only store.PushState.
// open returns a fresh, empty state for each test; the cases that race two
// nodes race two callers of it. Run includes these cases.
func RunPushState(t *testing.T, open func(t *testing.T) store.PushState) {
	one := func(t *testing.T) (a, b store.PushState) {
		s := open(t)
		return s, s
	}
	for _, c := range pushStateCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, one) })
	}
}

// twoNodes opens a fresh database twice, as two nodes.
func twoNodes(newDB NewDB) openPush {
	return func(t *testing.T) (a, b store.PushState) {
		o := newDB(t)
		return openWith(t, o), openWith(t, o)
	}
}

// challenge is a pending challenge created at created, expiring a minute
// later, purged an hour later.
func challenge(id, userName string, created time.Time) store.Challenge {
	return store.Challenge{ID: id, User: userName, AppID: "app-vpn", AppName: "VPN", Channel: "radius",
		ClientIP: "192.0.2.7", UserAgent: "nas-1", Location: "Berlin, DE", Station: "station-1", Number: "42", Signed: "jws." + id,
		Hash: []byte("sha256-" + id), State: store.ChallengePending,
		CreatedAt: created, ExpiresAt: created.Add(time.Minute), PurgeAt: created.Add(time.Hour)}
}

func joinAlways(store.Challenge) bool { return true }
func joinNever(store.Challenge) bool  { return false }

// create makes c its user's pending challenge at c.CreatedAt, failing the
// test if anything was pending.
func create(t *testing.T, s store.PushState, c store.Challenge) store.Challenge {
	t.Helper()
	got, joined, closed, err := s.CreateChallenge(ctx(), c, c.CreatedAt, time.Time{}, func(p store.Challenge) bool {
		t.Errorf("create %s: join asked about %s, but nothing should be pending", c.ID, p.ID)
		return false
	})
	must(t, err, "create "+c.ID)
	if joined || len(closed) != 0 || got.ID != c.ID {
		t.Fatalf("create %s: got %s joined=%v closed=%v", c.ID, got.ID, joined, closed)
	}
	return got
}

func getChallenge(t *testing.T, s store.PushState, id string) store.Challenge {
	t.Helper()
	c, err := s.GetChallenge(ctx(), id)
	must(t, err, "get challenge "+id)
	return c
}

func sameChallenge(a, b store.Challenge) bool {
	return a.ID == b.ID && a.User == b.User && a.AppID == b.AppID && a.AppName == b.AppName && a.Channel == b.Channel &&
		a.ClientIP == b.ClientIP && a.UserAgent == b.UserAgent && a.Location == b.Location && a.Station == b.Station && a.Number == b.Number &&
		a.Signed == b.Signed && bytes.Equal(a.Hash, b.Hash) && a.State == b.State && a.CreatedAt.Equal(b.CreatedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.PurgeAt.Equal(b.PurgeAt) && a.ClosedAt.Equal(b.ClosedAt) &&
		a.DeviceID == b.DeviceID && a.Reason == b.Reason
}

// warm opens connections on both nodes first, so that the racing calls
// that follow start together instead of queueing for connections.
func warm(t *testing.T, a, b store.PushState, n int) {
	t.Helper()
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, err := s.CountChallenges(ctx(), "warm-up", ts)
		return err
	})
	if ok != n {
		t.Fatalf("warming up: %v", errs)
	}
}

func ids(cs []store.Challenge) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func testPushRoundTrip(t *testing.T, open openPush) {
	s, _ := open(t)
	_, err := s.GetChallenge(ctx(), "c1")
	wantErr(t, err, store.ErrNotFound, "get before create")
	c := challenge("c1", "alice", ts)
	got := create(t, s, c)
	if !sameChallenge(got, c) {
		t.Fatalf("create returned\n %+v\nwant\n %+v", got, c)
	}
	if stored := getChallenge(t, s, "c1"); !sameChallenge(stored, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", stored, c)
	}
	// The state keeps its own copy, and callers get copies.
	c.Hash[0] ^= 0xff
	got.Hash[1] ^= 0xff
	stored := getChallenge(t, s, "c1")
	stored.Hash[2] ^= 0xff
	if again := getChallenge(t, s, "c1"); !bytes.Equal(again.Hash, challenge("c1", "alice", ts).Hash) {
		t.Fatalf("changing a challenge passed in or returned changed the stored one: hash %q", again.Hash)
	}

	// The same id for another user is a conflict, not a second challenge.
	_, _, _, err = s.CreateChallenge(ctx(), challenge("c1", "bob", ts), ts, time.Time{}, joinNever)
	wantErr(t, err, store.ErrConflict, "duplicate id")
	if p, _ := s.PendingChallenges(ctx(), "bob", ts); len(p) != 0 {
		t.Fatalf("a refused challenge is pending: %v", ids(p))
	}

	for name, bad := range map[string]store.Challenge{
		"no id":                func() store.Challenge { c := challenge("", "carol", ts); return c }(),
		"no user":              func() store.Challenge { c := challenge("x1", "", ts); return c }(),
		"not pending":          func() store.Challenge { c := challenge("x2", "carol", ts); c.State = store.ChallengeApproved; return c }(),
		"no expiry":            func() store.Challenge { c := challenge("x3", "carol", ts); c.ExpiresAt = time.Time{}; return c }(),
		"purged before expiry": func() store.Challenge { c := challenge("x4", "carol", ts); c.PurgeAt = ts; return c }(),
	} {
		_, _, _, err := s.CreateChallenge(ctx(), bad, ts, time.Time{}, joinNever)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

func testPushJoinOrSupersede(t *testing.T, open openPush) {
	s, _ := open(t)
	first := create(t, s, challenge("c1", "dave", ts))

	var asked []string
	got, joined, closed, err := s.CreateChallenge(ctx(), challenge("c2", "dave", ts.Add(time.Second)), ts.Add(time.Second), time.Time{}, func(p store.Challenge) bool {
		asked = append(asked, p.ID)
		return true
	})
	must(t, err, "create joining")
	if !joined || !sameChallenge(got, first) || len(closed) != 0 || !slices.Equal(asked, []string{"c1"}) {
		t.Fatalf("joining: got %s joined=%v closed=%v, join asked about %v", got.ID, joined, ids(closed), asked)
	}
	_, err = s.GetChallenge(ctx(), "c2")
	wantErr(t, err, store.ErrNotFound, "a joining challenge is not stored")

	now := ts.Add(2 * time.Second)
	got, joined, closed, err = s.CreateChallenge(ctx(), challenge("c3", "dave", now), now, time.Time{}, joinNever)
	must(t, err, "create superseding")
	if joined || got.ID != "c3" || got.State != store.ChallengePending {
		t.Fatalf("superseding: got %+v joined=%v", got, joined)
	}
	if len(closed) != 1 || closed[0].ID != "c1" || closed[0].State != store.ChallengeSuperseded ||
		closed[0].Reason != "superseded" || !closed[0].ClosedAt.Equal(now) {
		t.Fatalf("superseding closed %+v, want c1 superseded at %v", closed, now)
	}
	if c1 := getChallenge(t, s, "c1"); c1.State != store.ChallengeSuperseded || !c1.ClosedAt.Equal(now) {
		t.Fatalf("c1 after being superseded: %+v", c1)
	}
	p, err := s.PendingChallenges(ctx(), "dave", now)
	must(t, err, "pending")
	if !slices.Equal(ids(p), []string{"c3"}) {
		t.Fatalf("pending = %v, want c3", ids(p))
	}
}

// testPushConcurrentJoin: twenty logins of one user at once on two nodes,
// all willing to join: one challenge is made and every login gets it.
func testPushConcurrentJoin(t *testing.T, open openPush) {
	a, b := open(t)
	const n = 20
	warm(t, a, b, n)
	got := make([]store.Challenge, n)
	joined := make([]bool, n)
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		var err error
		got[i], joined[i], _, err = s.CreateChallenge(ctx(), challenge(fmt.Sprintf("c%02d", i), "erin", ts), ts, time.Time{}, joinAlways)
		return err
	})
	if ok != n {
		t.Fatalf("concurrent creates failed: %v", errs)
	}
	inserted := 0
	for i := range n {
		if !joined[i] {
			inserted++
		}
	}
	if inserted != 1 {
		t.Fatalf("%d challenges inserted for one user, want 1 (the rest join it)", inserted)
	}
	for i := range n {
		if got[i].ID != got[0].ID {
			t.Fatalf("call %d got challenge %s, call 0 got %s: all must share the one pending", i, got[i].ID, got[0].ID)
		}
	}
	p, err := a.PendingChallenges(ctx(), "erin", ts)
	must(t, err, "pending")
	if !slices.Equal(ids(p), []string{got[0].ID}) {
		t.Fatalf("pending = %v, want just %s", ids(p), got[0].ID)
	}
	if c, err := a.CountChallenges(ctx(), "erin", ts); err != nil || c != 1 {
		t.Fatalf("count = %d, %v; want 1", c, err)
	}
}

// testPushConcurrentSupersede: twenty logins of one user at once on two
// nodes, each replacing whatever is pending: all are made, each but one
// superseded exactly once, and one is left pending.
func testPushConcurrentSupersede(t *testing.T, open openPush) {
	a, b := open(t)
	const n = 20
	warm(t, a, b, n)
	var (
		mu         sync.Mutex
		superseded = map[string]int{}
	)
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		id := fmt.Sprintf("c%02d", i)
		got, joined, closed, err := s.CreateChallenge(ctx(), challenge(id, "frank", ts), ts, time.Time{}, joinNever)
		if err != nil {
			return err
		}
		if joined || got.ID != id {
			return fmt.Errorf("create %s: got %s joined=%v", id, got.ID, joined)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range closed {
			if c.State != store.ChallengeSuperseded {
				return fmt.Errorf("create %s closed %s as %s", id, c.ID, c.State)
			}
			superseded[c.ID]++
		}
		return nil
	})
	if ok != n {
		t.Fatalf("concurrent creates failed: %v", errs)
	}
	if len(superseded) != n-1 {
		t.Fatalf("%d challenges reported superseded, want %d: %v", len(superseded), n-1, superseded)
	}
	for id, k := range superseded {
		if k != 1 {
			t.Fatalf("%s reported superseded %d times", id, k)
		}
	}
	p, err := b.PendingChallenges(ctx(), "frank", ts)
	must(t, err, "pending")
	if len(p) != 1 || superseded[p[0].ID] != 0 {
		t.Fatalf("pending = %v, want the one challenge not superseded", ids(p))
	}
	states := map[store.ChallengeState]int{}
	for i := range n {
		states[getChallenge(t, a, fmt.Sprintf("c%02d", i)).State]++
	}
	if states[store.ChallengePending] != 1 || states[store.ChallengeSuperseded] != n-1 {
		t.Fatalf("states of the %d challenges: %v", n, states)
	}
}

func testPushExpiredClosedByCreate(t *testing.T, open openPush) {
	s, _ := open(t)
	old := create(t, s, challenge("c1", "gina", ts))
	now := old.ExpiresAt // expired at now
	got, joined, closed, err := s.CreateChallenge(ctx(), challenge("c2", "gina", now), now, time.Time{}, func(p store.Challenge) bool {
		t.Errorf("join asked about %s, which expired", p.ID)
		return true
	})
	must(t, err, "create")
	if joined || got.ID != "c2" {
		t.Fatalf("got %s joined=%v, want c2 created", got.ID, joined)
	}
	if len(closed) != 1 || closed[0].ID != "c1" || closed[0].State != store.ChallengeExpired ||
		closed[0].Reason != "expired" || !closed[0].ClosedAt.Equal(now) {
		t.Fatalf("closed = %+v, want c1 expired at %v", closed, now)
	}
	if c1 := getChallenge(t, s, "c1"); c1.State != store.ChallengeExpired {
		t.Fatalf("c1 = %s, want expired", c1.State)
	}
}

func testPushCloseOnce(t *testing.T, open openPush) {
	a, b := open(t)
	create(t, a, challenge("c1", "hank", ts))
	now := ts.Add(10 * time.Second)
	const n = 20
	results := make([]error, n)
	ok, errs := race(n, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		_, results[i] = s.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeApproved, DeviceID: fmt.Sprintf("dev-%02d", i), Reason: "approved"}, now)
		return results[i]
	})
	if ok != 1 {
		t.Fatalf("%d of %d concurrent closes succeeded, want 1 (%v)", ok, n, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrUsed, "losing close")
	}
	winner := slices.Index(results, nil)
	got := getChallenge(t, b, "c1")
	if got.State != store.ChallengeApproved || got.DeviceID != fmt.Sprintf("dev-%02d", winner) ||
		got.Reason != "approved" || !got.ClosedAt.Equal(now) {
		t.Fatalf("after the closes: %+v (winner dev-%02d)", got, winner)
	}
	_, err := a.CloseChallenge(ctx(), "nope", store.ChallengeClose{State: store.ChallengeDenied}, now)
	wantErr(t, err, store.ErrNotFound, "close unknown")
	create(t, a, challenge("c2", "ivan", ts))
	_, err = a.CloseChallenge(ctx(), "c2", store.ChallengeClose{State: store.ChallengePending}, now)
	wantErr(t, err, store.ErrInvalid, "close into pending")
	if c2 := getChallenge(t, a, "c2"); c2.State != store.ChallengePending {
		t.Fatalf("an invalid close changed c2 to %s", c2.State)
	}
}

func testPushCloseAfterExpiry(t *testing.T, open openPush) {
	s, _ := open(t)
	c := create(t, s, challenge("c1", "judy", ts))
	// A microsecond before the expiry the answer still counts.
	create(t, s, challenge("c2", "kate", ts))
	got, err := s.CloseChallenge(ctx(), "c2", store.ChallengeClose{State: store.ChallengeDenied, DeviceID: "d2", Reason: "denied"}, c.ExpiresAt.Add(-time.Microsecond))
	must(t, err, "close just in time")
	if got.State != store.ChallengeDenied || got.DeviceID != "d2" {
		t.Fatalf("closed just in time: %+v", got)
	}

	got, err = s.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeApproved, DeviceID: "d1", Reason: "approved"}, c.ExpiresAt)
	wantErr(t, err, store.ErrExpired, "approve at the expiry")
	if got.State != store.ChallengeExpired || got.DeviceID != "" {
		t.Fatalf("returned %+v, want the challenge closed as expired", got)
	}
	stored := getChallenge(t, s, "c1")
	if stored.State != store.ChallengeExpired || stored.Reason != "expired" || stored.DeviceID != "" || !stored.ClosedAt.Equal(c.ExpiresAt) {
		t.Fatalf("stored after a late answer: %+v", stored)
	}
	_, err = s.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeApproved}, c.ExpiresAt)
	wantErr(t, err, store.ErrUsed, "answer after it was closed as expired")
}

func testPushAllowExpired(t *testing.T, open openPush) {
	s, _ := open(t)
	c := create(t, s, challenge("c1", "lena", ts))
	late := c.ExpiresAt.Add(time.Minute)
	got, err := s.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeCancelled, Reason: "login gave up", AllowExpired: true}, late)
	must(t, err, "close with AllowExpired")
	if got.State != store.ChallengeCancelled || got.Reason != "login gave up" || !got.ClosedAt.Equal(late) {
		t.Fatalf("closed with AllowExpired: %+v", got)
	}
	if stored := getChallenge(t, s, "c1"); stored.State != store.ChallengeCancelled {
		t.Fatalf("stored state %s, want cancelled", stored.State)
	}
}

func testPushExpireWithLimit(t *testing.T, open openPush) {
	s, _ := open(t)
	for i := range 5 {
		create(t, s, challenge(fmt.Sprintf("c%d", i), fmt.Sprintf("user%d", i), ts.Add(time.Duration(i)*time.Second)))
	}
	// Closed already: not expired again.
	create(t, s, challenge("done", "user5", ts))
	_, err := s.CloseChallenge(ctx(), "done", store.ChallengeClose{State: store.ChallengeApproved, DeviceID: "d"}, ts)
	must(t, err, "close")
	// Still live at now.
	live := challenge("live", "user6", ts)
	live.ExpiresAt, live.PurgeAt = ts.Add(time.Hour), ts.Add(2*time.Hour)
	create(t, s, live)

	now := ts.Add(time.Minute + 4*time.Second) // c4 expires exactly now
	seen := map[string]bool{}
	for _, want := range []int{2, 2, 1, 0} {
		got, err := s.ExpireChallenges(ctx(), now, 2)
		must(t, err, "expire")
		if len(got) != want {
			t.Fatalf("expired %v, want %d challenges", ids(got), want)
		}
		for _, c := range got {
			if c.State != store.ChallengeExpired || c.Reason != "expired" || !c.ClosedAt.Equal(now) || seen[c.ID] {
				t.Fatalf("expired challenge %+v (seen before: %v)", c, seen[c.ID])
			}
			seen[c.ID] = true
		}
	}
	for i := range 5 {
		if !seen[fmt.Sprintf("c%d", i)] {
			t.Fatalf("c%d was not expired; expired %v", i, seen)
		}
	}
	if got := getChallenge(t, s, "done"); got.State != store.ChallengeApproved {
		t.Fatalf("a closed challenge was expired: %s", got.State)
	}
	if got := getChallenge(t, s, "live"); got.State != store.ChallengePending {
		t.Fatalf("a live challenge was expired: %s", got.State)
	}
}

// testPushExpireAcrossNodes: janitors on two nodes expire each challenge once.
func testPushExpireAcrossNodes(t *testing.T, open openPush) {
	a, b := open(t)
	const n = 12
	for i := range n {
		create(t, a, challenge(fmt.Sprintf("c%02d", i), fmt.Sprintf("user%02d", i), ts))
	}
	now := ts.Add(time.Hour - time.Second)
	var (
		mu      sync.Mutex
		expired = map[string]int{}
	)
	ok, errs := race(6, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		got, err := s.ExpireChallenges(ctx(), now, 100)
		mu.Lock()
		defer mu.Unlock()
		for _, c := range got {
			expired[c.ID]++
		}
		return err
	})
	if ok != 6 {
		t.Fatalf("concurrent expiries failed: %v", errs)
	}
	if len(expired) != n {
		t.Fatalf("%d challenges expired, want %d", len(expired), n)
	}
	for id, k := range expired {
		if k != 1 {
			t.Fatalf("%s reported expired %d times", id, k)
		}
	}
}

func testPushCountWindow(t *testing.T, open openPush) {
	s, _ := open(t)
	for i := range 3 {
		at := ts.Add(time.Duration(i) * time.Minute)
		if _, _, _, err := s.CreateChallenge(ctx(), challenge(fmt.Sprintf("c%d", i), "mike", at), at, time.Time{}, joinNever); err != nil {
			t.Fatal(err)
		}
	}
	create(t, s, challenge("other", "nina", ts.Add(2*time.Minute)))
	for _, c := range []struct {
		since time.Time
		want  int
	}{
		{ts.Add(-time.Hour), 3},
		{ts, 3},
		{ts.Add(time.Minute), 2}, // created at or after since
		{ts.Add(time.Minute + time.Microsecond), 1},
		{ts.Add(3 * time.Minute), 0},
	} {
		got, err := s.CountChallenges(ctx(), "mike", c.since)
		must(t, err, "count")
		if got != c.want {
			t.Errorf("count since %v = %d, want %d", c.since.Sub(ts), got, c.want)
		}
	}
	if got, _ := s.CountChallenges(ctx(), "nobody", ts); got != 0 {
		t.Errorf("count for a user without challenges = %d", got)
	}
}

func testPushPendingList(t *testing.T, open openPush) {
	s, _ := open(t)
	c := create(t, s, challenge("c1", "oscar", ts))
	create(t, s, challenge("o1", "paul", ts))
	create(t, s, challenge("done", "quinn", ts))
	_, err := s.CloseChallenge(ctx(), "done", store.ChallengeClose{State: store.ChallengeDenied}, ts)
	must(t, err, "close")

	p, err := s.PendingChallenges(ctx(), "oscar", ts.Add(30*time.Second))
	must(t, err, "pending")
	if len(p) != 1 || !sameChallenge(p[0], c) {
		t.Fatalf("pending = %+v, want c1", p)
	}
	p, err = s.PendingChallenges(ctx(), "oscar", c.ExpiresAt)
	must(t, err, "pending at expiry")
	if len(p) != 0 {
		t.Fatalf("pending at its expiry = %v, want none", ids(p))
	}
	if p, _ := s.PendingChallenges(ctx(), "quinn", ts); len(p) != 0 {
		t.Fatalf("closed challenge listed as pending: %v", ids(p))
	}
	if p, _ := s.PendingChallenges(ctx(), "nobody", ts); len(p) != 0 {
		t.Fatalf("pending for a user without challenges: %v", ids(p))
	}
}

func testPushPurge(t *testing.T, open openPush) {
	s, _ := open(t)
	c1 := create(t, s, challenge("c1", "rita", ts))
	_, err := s.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeApproved, DeviceID: "d"}, ts)
	must(t, err, "close")
	later := challenge("c2", "sam", ts.Add(time.Minute))
	create(t, s, later)

	n, err := s.DeleteExpired(ctx(), c1.PurgeAt.Add(-time.Microsecond))
	must(t, err, "janitor before purge time")
	if n != 0 {
		t.Fatalf("deleted %d records before their purge time", n)
	}
	n, err = s.DeleteExpired(ctx(), c1.PurgeAt)
	must(t, err, "janitor")
	if n != 1 {
		t.Fatalf("deleted %d records, want 1", n)
	}
	_, err = s.GetChallenge(ctx(), "c1")
	wantErr(t, err, store.ErrNotFound, "purged challenge")
	if got, _ := s.CountChallenges(ctx(), "rita", ts); got != 0 {
		t.Fatalf("purged challenge still counted: %d", got)
	}
	getChallenge(t, s, "c2")
	// A purged pending challenge frees its user's slot.
	n, err = s.DeleteExpired(ctx(), later.PurgeAt)
	must(t, err, "janitor")
	if n != 1 {
		t.Fatalf("deleted %d records, want 1", n)
	}
	create(t, s, challenge("c3", "sam", later.PurgeAt))
}

func testReplayUseOnce(t *testing.T, open openPush) {
	s, _ := open(t)
	exp := ts.Add(time.Minute)
	must(t, s.UseOnce(ctx(), "jti", "abc", ts, exp), "first")
	wantErr(t, s.UseOnce(ctx(), "jti", "abc", ts.Add(time.Second), exp), store.ErrUsed, "replay")
	must(t, s.UseOnce(ctx(), "nonce", "abc", ts, exp), "same key, other namespace")
	must(t, s.UseOnce(ctx(), "jti", "abc", exp, exp.Add(time.Minute)), "after expiry the value is free again")
	wantErr(t, s.UseOnce(ctx(), "jti", "abc", exp.Add(time.Second), exp.Add(time.Minute)), store.ErrUsed, "replay of renewed entry")
	wantErr(t, s.UseOnce(ctx(), "", "abc", ts, exp), store.ErrInvalid, "empty namespace")

	// The janitor removes expired entries only.
	must(t, s.UseOnce(ctx(), "jti", "short", ts, ts.Add(time.Second)), "short-lived")
	n, err := s.DeleteExpired(ctx(), ts.Add(time.Second))
	must(t, err, "janitor")
	if n != 1 {
		t.Fatalf("janitor deleted %d entries, want 1", n)
	}
	wantErr(t, s.UseOnce(ctx(), "nonce", "abc", ts.Add(time.Second), exp), store.ErrUsed, "live entry kept by the janitor")
}

func testReplayConcurrent(t *testing.T, open openPush) {
	a, b := open(t)
	ok, errs := race(20, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		return s.UseOnce(ctx(), "jti", "same", ts, ts.Add(time.Minute))
	})
	if ok != 1 {
		t.Fatalf("%d uses of one value succeeded, want 1 (%v)", ok, errs)
	}
	for _, err := range errs {
		wantErr(t, err, store.ErrUsed, "losing use")
	}
}

// testPushJoinClosedSince: with nothing pending, CreateChallenge offers the
// challenges closed at or after closedSince (closed on another node), newest
// first; one that join takes is returned and nothing is inserted. Closed
// before closedSince, or with a challenge pending, they are not offered.
func testPushJoinClosedSince(t *testing.T, open openPush) {
	a, b := open(t)
	create(t, a, challenge("c1", "olga", ts))
	closedAt := ts.Add(10 * time.Second)
	_, err := b.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeApproved, DeviceID: "d1", Reason: "approved"}, closedAt)
	must(t, err, "approve c1")

	now := ts.Add(20 * time.Second)
	var asked []string
	got, joined, closed, err := a.CreateChallenge(ctx(), challenge("c2", "olga", now), now, ts.Add(5*time.Second), func(p store.Challenge) bool {
		asked = append(asked, p.ID)
		return p.State == store.ChallengeApproved
	})
	must(t, err, "create after the approval")
	if !joined || got.ID != "c1" || got.State != store.ChallengeApproved || !got.ClosedAt.Equal(closedAt) || len(closed) != 0 || !slices.Equal(asked, []string{"c1"}) {
		t.Fatalf("joining a challenge closed since: got %+v joined=%v closed=%v asked=%v", got, joined, ids(closed), asked)
	}
	_, err = a.GetChallenge(ctx(), "c2")
	wantErr(t, err, store.ErrNotFound, "a joining challenge is not stored")

	got, joined, _, err = a.CreateChallenge(ctx(), challenge("c3", "olga", now), now, closedAt.Add(time.Microsecond), func(p store.Challenge) bool {
		t.Errorf("join asked about %s, closed before closedSince", p.ID)
		return true
	})
	must(t, err, "create after closedSince")
	if joined || got.ID != "c3" {
		t.Fatalf("closed before closedSince: got %s joined=%v, want c3 inserted", got.ID, joined)
	}
	// c3 is pending now: only it is offered, whatever closedSince says.
	asked = nil
	later := now.Add(time.Second)
	got, joined, closed, err = a.CreateChallenge(ctx(), challenge("c4", "olga", later), later, ts, func(p store.Challenge) bool {
		asked = append(asked, p.ID)
		return false
	})
	must(t, err, "create with one pending")
	if joined || got.ID != "c4" || !slices.Equal(asked, []string{"c3"}) || len(closed) != 1 || closed[0].ID != "c3" {
		t.Fatalf("with c3 pending: got %s joined=%v closed=%v asked=%v; want c3 alone offered, then superseded", got.ID, joined, ids(closed), asked)
	}
}

// testPushRecentList: RecentChallenges lists a user's challenges created at
// or after since, in any state, newest first, and no one else's.
func testPushRecentList(t *testing.T, open openPush) {
	a, b := open(t)
	create(t, a, challenge("c1", "pia", ts))
	_, err := a.CloseChallenge(ctx(), "c1", store.ChallengeClose{State: store.ChallengeDenied, Reason: "denied"}, ts.Add(time.Second))
	must(t, err, "deny c1")
	create(t, b, challenge("c2", "pia", ts.Add(2*time.Second)))
	create(t, b, challenge("c3", "quinn", ts.Add(3*time.Second)))
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{ts, []string{"c2", "c1"}},
		{ts.Add(time.Second), []string{"c2"}},
		{ts.Add(3 * time.Second), nil},
	} {
		got, err := a.RecentChallenges(ctx(), "pia", tc.since)
		must(t, err, "recent")
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("recent since %v = %v, want %v", tc.since, ids(got), tc.want)
		}
		if len(got) == 2 && got[1].State != store.ChallengeDenied {
			t.Errorf("c1 listed as %s, want denied", got[1].State)
		}
	}
}
