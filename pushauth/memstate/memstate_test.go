package memstate_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunPushState(t, func(t *testing.T) store.PushState { return memstate.New() })
}

// BenchmarkCreateClose is one push login on the state: create the user's
// challenge, close it, count the user's recent challenges.
func BenchmarkCreateClose(b *testing.B) {
	s := memstate.New()
	var n atomic.Int64
	now := time.Now()
	join := func(store.Challenge) bool { return true }
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := strconv.FormatInt(i, 10)
			c := store.Challenge{ID: id, User: "user" + strconv.FormatInt(i%1000, 10), Hash: []byte("0123456789abcdef0123456789abcdef"),
				CreatedAt: now, ExpiresAt: now.Add(time.Minute), PurgeAt: now.Add(time.Hour)}
			got, _, _, err := s.CreateChallenge(context.Background(), c, now, time.Time{}, join)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.CloseChallenge(context.Background(), got.ID, store.ChallengeClose{State: store.ChallengeApproved, DeviceID: "d"}, now); err != nil && !errors.Is(err, store.ErrUsed) {
				b.Error(err)
				return
			}
			if _, err := s.CountChallenges(context.Background(), c.User, now.Add(-time.Minute)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
