package otp

import (
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/sqlite"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "bridge.db")}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newSealer(t *testing.T) *keys.Sealer {
	t.Helper()
	kek := make([]byte, keys.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	s, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newClock starts at the beginning of a 30 s step, so tests can move
// within the step without crossing it.
func newClock() *testenv.Clock {
	return testenv.NewClock(time.Unix(1_900_000_020, 0).UTC())
}

// countingStore counts the OTP store calls that reach the real store.
type countingStore struct {
	store.OTP
	n atomic.Int64
}

func (c *countingStore) PutTOTP(ctx context.Context, t store.TOTP) error {
	c.n.Add(1)
	return c.OTP.PutTOTP(ctx, t)
}

func (c *countingStore) GetTOTP(ctx context.Context, user string) (store.TOTP, error) {
	c.n.Add(1)
	return c.OTP.GetTOTP(ctx, user)
}

func (c *countingStore) UseTOTPCounter(ctx context.Context, user string, counter int64) error {
	c.n.Add(1)
	return c.OTP.UseTOTPCounter(ctx, user, counter)
}

func (c *countingStore) DeleteTOTP(ctx context.Context, user string) error {
	c.n.Add(1)
	return c.OTP.DeleteTOTP(ctx, user)
}

func (c *countingStore) CreateBypassCode(ctx context.Context, b store.BypassCode) error {
	c.n.Add(1)
	return c.OTP.CreateBypassCode(ctx, b)
}

func (c *countingStore) UseBypassCode(ctx context.Context, id string, now time.Time) (store.BypassCode, error) {
	c.n.Add(1)
	return c.OTP.UseBypassCode(ctx, id, now)
}

func (c *countingStore) ListBypassCodes(ctx context.Context, user string) ([]store.BypassCode, error) {
	c.n.Add(1)
	return c.OTP.ListBypassCodes(ctx, user)
}

// malformedCodes are inputs no verifier may take to the store.
var malformedCodes = []string{
	"",
	" ",
	"-",
	"12345",
	"1234567",
	"123456789",
	"12a456",
	"12345x",
	"１２３４５６", // full-width digits
	"١٢٣٤٥٦", // Arabic-Indic digits
	"123456\x00",
	"+123456",
	"12.3456",
	"0x123456",
	"123456789012345678901234567890",
	"1234567890123456789012345678901234567890123456789012345678901234567890",
	"\xff\xfe123456",
}
