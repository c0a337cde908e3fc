package storetest

import (
	"fmt"
	"testing"

	"github.com/bridge-idp/bridge/store"
)

// testAuditBySubject: a user's events, newest first, paged backwards by
// Seq, and nobody else's; batches and singles alike.
func testAuditBySubject(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	var alice []int64
	for i := 1; i <= 12; i++ {
		e := event(i)
		e.Subject = "bob"
		if i%3 != 0 {
			e.Subject = "alice"
		}
		got, err := s.AppendAudit(ctx(), e)
		must(t, err, "append")
		if e.Subject == "alice" {
			alice = append(alice, got.Seq)
		}
	}
	batch := []store.AuditEvent{event(13), event(14)}
	batch[0].Subject, batch[1].Subject = "alice", "carol"
	got, err := s.AppendAuditBatch(ctx(), batch)
	must(t, err, "append batch")
	alice = append(alice, got[0].Seq)

	// Newest first, all pages together exactly alice's events.
	var seen []int64
	before := int64(0)
	for page := 0; ; page++ {
		evs, err := s.ListAuditBySubject(ctx(), "alice", before, 4)
		must(t, err, "list alice")
		if len(evs) == 0 {
			break
		}
		if page > 5 || len(evs) > 4 {
			t.Fatalf("page %d has %d events (limit 4)", page, len(evs))
		}
		for _, e := range evs {
			if e.Subject != "alice" {
				t.Fatalf("alice's list holds %q's event %d", e.Subject, e.Seq)
			}
			if before != 0 && e.Seq >= before {
				t.Fatalf("event %d is not before %d", e.Seq, before)
			}
			seen = append(seen, e.Seq)
			before = e.Seq
		}
	}
	if len(seen) != len(alice) {
		t.Fatalf("alice's pages hold %v, want %v (newest first)", seen, alice)
	}
	for i := range seen {
		if want := alice[len(alice)-1-i]; seen[i] != want {
			t.Fatalf("alice's pages hold %v, want the reverse of %v", seen, alice)
		}
	}
	// The fields come back as appended.
	evs, err := s.ListAuditBySubject(ctx(), "alice", 0, 1)
	must(t, err, "list newest")
	if len(evs) != 1 || evs[0].Seq != got[0].Seq || evs[0].Details["i"] != "13" || !evs[0].Time.Equal(event(13).Time) || len(evs[0].Hash) == 0 {
		t.Fatalf("newest of alice = %+v, want the batch's first event", evs)
	}
	for _, c := range []struct {
		subject string
		before  int64
		want    int
	}{
		{"carol", 0, 1},
		{"bob", 0, 4},
		{"bob", 4, 1}, // bob has 3, 6, 9, 12
		{"nobody", 0, 0},
		{"ALICE", 0, 0}, // exact match: names are stored normalised
		{"alice\x00", 0, 0},
		{"\xff", 0, 0},
		{"alice", 1, 0},
	} {
		evs, err := s.ListAuditBySubject(ctx(), c.subject, c.before, 0)
		must(t, err, fmt.Sprintf("list %q before %d", c.subject, c.before))
		if len(evs) != c.want {
			t.Errorf("%q before %d: %d events, want %d", c.subject, c.before, len(evs), c.want)
		}
	}
}
