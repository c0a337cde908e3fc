package pushauth_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/authenticator"
	"github.com/bridge-idp/bridge/pushauth/memstate"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/storetest"
)

// TestPerIPCapSharedByNodes: max_per_ip_minute was counted in each node's
// memory, so N nodes let N times the pushes through. Two engines on one
// PostgreSQL store now share the count.
func TestPerIPCapSharedByNodes(t *testing.T) {
	dsn := pgtest.FreshSchema(t)
	var nodes []*env
	for range 2 {
		st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, MaxConns: 4, AuditKey: storetest.AuditKey()}, discard())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nodes = append(nodes, newNode(t, st, memstate.New(), nil, func(c *pushauth.Config, _ *pushauth.Deps) { c.MaxPerIPMinute = 3 }))
	}
	var refused int
	for i := range 6 {
		user := fmt.Sprint("user", i)
		nodes[0].enroll(user, authenticator.EnrollOptions{})
		_, err := nodes[i%2].eng.Start(context.Background(), login(user))
		var rl *pushauth.RateLimitError
		switch {
		case errors.As(err, &rl):
			refused++
		case err != nil:
			t.Fatalf("start %d: %v", i, err)
		}
	}
	if refused != 3 {
		t.Fatalf("%d of 6 starts from one address on two nodes refused, want 3 (max_per_ip_minute 3 for both together)", refused)
	}
}
