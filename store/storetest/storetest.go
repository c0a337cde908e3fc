package storetest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// Opener opens the same database each time it is called, as another node
// would.
type Opener func(ctx context.Context) (store.Store, error)

// AuditKey is the audit chain key backends under test must be opened with.
func AuditKey() []byte { return []byte("storetest audit chain key 32 byt") }

// NewDB makes a fresh, empty database for one test and returns its Opener.
// It registers its own cleanup with t.
type NewDB func(t *testing.T) Opener

// Run runs the whole suite.
func Run(t *testing.T, newDB NewDB) {
	cases := []struct {
		name string
		fn   func(t *testing.T, newDB NewDB)
	}{
		{"Migrate/Idempotent", testMigrateIdempotent},
		{"Migrate/ConcurrentNodes", testMigrateConcurrent},
		{"Users/CRUD", testUsersCRUD},
		{"Users/BatchIsAtomic", testUsersBatchAtomic},
		{"Users/Invalid", testUsersInvalid},
		{"Users/UpdateAborts", testUsersUpdateAborts},
		{"Users/DeleteTakesFactors", testUsersDeleteCascade},
		{"Users/NoLostUpdates", testUsersNoLostUpdates},
		{"Users/ByteOrder", testUsersByteOrder},
		{"Devices/CRUD", testDevicesCRUD},
		{"Devices/NoLostUpdates", testDevicesNoLostUpdates},
		{"Devices/WebAuthn", testDevicesWebAuthn},
		{"Devices/SignCounterRace", testDevicesSignCounterRace},
		{"Keys/OneActivePerPurpose", testKeysOneActive},
		{"Keys/Rotate", testKeysRotate},
		{"Keys/RotateStoresEndorsement", testKeysEndorsement},
		{"Keys/ConcurrentFirstStart", testKeysConcurrentCreate},
		{"Audit/Chain", testAuditChain},
		{"Audit/HostileText", testAuditHostileText},
		{"Audit/ConcurrentAppends", testAuditConcurrent},
		{"Audit/DetectsModifiedRow", testAuditModified},
		{"Audit/DetectsDeletedRow", testAuditDeletedMiddle},
		{"Audit/DetectsDeletedTail", testAuditDeletedTail},
		{"Audit/DetectsChainRecomputedWithoutKey", testAuditRecomputedWithoutKey},
		{"TOTP/CounterSingleUse", testTOTPCounter},
		{"TOTP/ConcurrentSameCode", testTOTPConcurrent},
		{"Bypass/SingleUse", testBypassSingleUse},
		{"Bypass/ConcurrentUse", testBypassConcurrent},
		{"Janitor/DeletesExpired", testJanitor},
		{"Janitor/KeepsRecentAndUsedActivations", testJanitorActivations},
		{"Users/DeleteTakesPushRecords", testUsersDeletePushRecords},
		{"PushLimits/GetAndUpdate", testPushLimits},
		{"PushLimits/NoLostUpdates", testPushLimitsNoLostUpdates},
		{"Activations/CRUD", testActivationsCRUD},
		{"Activations/SingleUseConcurrent", testActivationsConcurrent},
		{"Activations/Expired", testActivationsExpired},
		{"Activations/CheckRefuses", testActivationsCheckRefuses},
		{"Activations/DuplicateDevice", testActivationsDuplicateDevice},
		{"Audit/Batch", testAuditBatch},
		{"Audit/BatchIsAtomic", testAuditBatchAtomic},
		{"Audit/ConcurrentBatchesAndSingles", testAuditBatchConcurrent},
		{"Audit/BySubject", testAuditBySubject},
		{"Grants/CRUD", testGrantsCRUD},
		{"Grants/ConsumeOnce", testGrantsConsumeOnce},
		{"Grants/ConcurrentConsume", testGrantsConcurrentConsume},
		{"Grants/Expiry", testGrantsExpiry},
		{"Grants/UpdateNoLostUpdates", testGrantsUpdateNoLostUpdates},
		{"Grants/UpdateAborts", testGrantsUpdateAborts},
		{"Grants/RevokeFamily", testGrantsRevokeFamily},
		{"Grants/RevokeSubject", testGrantsRevokeSubject},
		{"Grants/Invalid", testGrantsInvalid},
		{"Janitor/DeletesExpiredGrants", testJanitorGrants},
		{"Counters/Window", testCountersWindow},
		{"Counters/FlagOutlivesNodes", testCountersFlag},
		{"Counters/Chain", testCountersChain},
		{"Counters/MixedCall", testCountersMixedCall},
		{"Counters/Invalid", testCountersInvalid},
		{"Counters/Janitor", testCountersJanitor},
		{"Counters/ConcurrentNodes", testCountersConcurrent},
		{"Counters/LimitsConcurrentNodes", testLimitsConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDB) })
	}
	for _, c := range pushStateCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, twoNodes(newDB)) })
	}
}

// open opens a fresh database and closes it at the end of the test.
func open(t *testing.T, newDB NewDB) store.Store {
	t.Helper()
	return openWith(t, newDB(t))
}

func openWith(t *testing.T, o Opener) store.Store {
	t.Helper()
	s, err := o(context.Background())
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// rawSQL gives tamper tests the database under a SQL backend.
func rawSQL(t *testing.T, s store.Store) *sql.DB {
	t.Helper()
	r, ok := s.(interface{ SQL() *sql.DB })
	if !ok {
		t.Skip("backend exposes no SQL handle for tampering")
	}
	return r.SQL()
}

// ts is a fixed, microsecond-precise time for records.
var ts = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ctx() context.Context { return context.Background() }

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// race runs fn n times at once and returns how many calls returned nil and
// the errors of the others.
func race(n int, fn func(i int) error) (ok int, errs []error) {
	type res struct{ err error }
	out := make(chan res, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func(i int) {
			<-start
			out <- res{fn(i)}
		}(i)
	}
	close(start)
	for i := 0; i < n; i++ {
		if r := <-out; r.err == nil {
			ok++
		} else {
			errs = append(errs, r.err)
		}
	}
	return ok, errs
}
