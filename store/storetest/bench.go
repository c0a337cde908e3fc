package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Bench measures the store calls on the login path of later front ends:
// reading a user, recording a single-use value (replay caches), appending
// an audit event (every decision), and an atomic read-modify-write. Each
// runs with b.RunParallel, as concurrent logins would. Backends call it from
// a Benchmark function; run both in one `go test -bench` to compare them on
// the same machine at the same time.
func Bench(b *testing.B, newDB func(b *testing.B) Opener) {
	s, err := newDB(b)(ctx())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.CreateUsers(ctx(), user("alice")); err != nil {
		b.Fatal(err)
	}
	b.Run("GetUser", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.GetUser(ctx(), "alice"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	var n atomic.Int64
	b.Run("UseOnce", func(b *testing.B) {
		now := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.UseOnce(ctx(), "bench", fmt.Sprint(n.Add(1)), now, now.Add(time.Minute)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("AppendAudit", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e := event(int(n.Add(1)))
				e.Time = time.Now()
				if _, err := s.AppendAudit(ctx(), e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("UpdateUser", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.UpdateUser(ctx(), "alice", func(u store.User) (store.User, error) {
					u.DisplayName = fmt.Sprint(n.Add(1))
					return u, nil
				}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
