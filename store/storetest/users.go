package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/store"
)

func testMigrateIdempotent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a := openWith(t, o)
	must(t, a.CreateUsers(ctx(), user("alice")), "create")
	b := openWith(t, o) // second open: nothing to migrate, data kept
	if _, err := b.GetUser(ctx(), "alice"); err != nil {
		t.Fatalf("user lost after reopening: %v", err)
	}
}

func testMigrateConcurrent(t *testing.T, newDB NewDB) {
	o := newDB(t)
	const nodes = 4
	stores := make(chan store.Store, nodes)
	ok, errs := race(nodes, func(int) error {
		s, err := o(ctx())
		if err == nil {
			stores <- s
		}
		return err
	})
	close(stores)
	for s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	if ok != nodes {
		t.Fatalf("%d of %d nodes starting at once failed to open: %v", nodes-ok, nodes, errs)
	}
}

func user(name string) store.User {
	return store.User{Name: name, DisplayName: strings.ToUpper(name), Email: name + "@example.org",
		Groups: []string{"vpn", "staff", "vpn"}, Status: store.UserActive, PasswordHash: "$argon2id$x", CreatedAt: ts, UpdatedAt: ts}
}

func testUsersCRUD(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	_, err := s.GetUser(ctx(), "alice")
	wantErr(t, err, store.ErrNotFound, "get before create")
	must(t, s.CreateUsers(ctx(), user("bob"), user("alice")), "create")
	wantErr(t, s.CreateUsers(ctx(), user("alice")), store.ErrConflict, "duplicate")

	got, err := s.GetUser(ctx(), "alice")
	must(t, err, "get")
	want := user("alice")
	want.Groups = []string{"staff", "vpn"} // sorted, duplicates dropped
	if got.Name != want.Name || got.DisplayName != want.DisplayName || got.Email != want.Email ||
		!slices.Equal(got.Groups, want.Groups) || got.Status != want.Status || got.PasswordHash != want.PasswordHash ||
		!got.CreatedAt.Equal(ts) || !got.UpdatedAt.Equal(ts) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
	}

	list, err := s.ListUsers(ctx())
	must(t, err, "list")
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("list = %+v, want alice, bob", list)
	}

	later := ts.Add(time.Hour)
	upd, err := s.UpdateUser(ctx(), "alice", func(u store.User) (store.User, error) {
		u.Status, u.Email, u.UpdatedAt = store.UserDisabled, "a@example.net", later
		return u, nil
	})
	must(t, err, "update")
	got, err = s.GetUser(ctx(), "alice")
	must(t, err, "get after update")
	if got.Status != store.UserDisabled || got.Email != "a@example.net" || !got.UpdatedAt.Equal(later) || !got.CreatedAt.Equal(ts) || upd.Email != got.Email {
		t.Fatalf("after update: %+v", got)
	}
	_, err = s.UpdateUser(ctx(), "nobody", func(u store.User) (store.User, error) { return u, nil })
	wantErr(t, err, store.ErrNotFound, "update missing")

	must(t, s.DeleteUser(ctx(), "alice"), "delete")
	wantErr(t, s.DeleteUser(ctx(), "alice"), store.ErrNotFound, "delete twice")
	_, err = s.GetUser(ctx(), "alice")
	wantErr(t, err, store.ErrNotFound, "get deleted")
}

func testUsersBatchAtomic(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateUsers(ctx(), user("carol")), "create")
	err := s.CreateUsers(ctx(), user("dave"), user("erin"), user("carol"))
	wantErr(t, err, store.ErrConflict, "batch with a duplicate")
	for _, n := range []string{"dave", "erin"} {
		if _, err := s.GetUser(ctx(), n); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s was created by a failed batch (err %v)", n, err)
		}
	}
}

func testUsersInvalid(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	for name, u := range map[string]store.User{
		"upper case":             user("Alice"),
		"empty":                  user(""),
		"control char":           user("a\x00b"),
		"unknown status":         func() store.User { u := user("x"); u.Status = "frozen"; return u }(),
		"escape in display name": func() store.User { u := user("x"); u.DisplayName = "\x1b[2J"; return u }(),
		"newline in email":       func() store.User { u := user("x"); u.Email = "a@b\nBcc: c@d"; return u }(),
		"empty group":            func() store.User { u := user("x"); u.Groups = []string{""}; return u }(),
		"huge display name":      func() store.User { u := user("x"); u.DisplayName = strings.Repeat("x", 2000); return u }(),
	} {
		if err := s.CreateUsers(ctx(), u); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
	must(t, s.CreateUsers(ctx(), user("frank")), "create")
	_, err := s.UpdateUser(ctx(), "frank", func(u store.User) (store.User, error) { u.Name = "george"; return u, nil })
	wantErr(t, err, store.ErrInvalid, "rename")
}

func testUsersUpdateAborts(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateUsers(ctx(), user("hank")), "create")
	boom := errors.New("boom")
	_, err := s.UpdateUser(ctx(), "hank", func(u store.User) (store.User, error) {
		u.Email = "changed@example.org"
		return u, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("fn's error not returned: %v", err)
	}
	got, _ := s.GetUser(ctx(), "hank")
	if got.Email != "hank@example.org" {
		t.Fatalf("aborted update was written: %q", got.Email)
	}
}

func device(id, userName string) store.Device {
	return store.Device{ID: id, User: userName, Name: "phone", Platform: "android", KeyAlg: "ES256",
		PublicJWK: []byte(`{"kty":"EC"}`), PushProvider: "fcm", PushToken: "tok-" + id, AppVersion: "1.0",
		Posture: []byte(`{"rooted":false}`), Status: store.DeviceActive, CreatedAt: ts}
}

func testUsersDeleteCascade(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateUsers(ctx(), user("ivan"), user("judy")), "create")
	must(t, s.CreateDevice(ctx(), device("d1", "ivan")), "device")
	must(t, s.CreateDevice(ctx(), device("d2", "judy")), "device")
	must(t, s.PutTOTP(ctx(), totp("ivan")), "totp")
	must(t, s.CreateBypassCode(ctx(), bypass("b1", "ivan", ts.Add(time.Hour))), "bypass")
	must(t, s.DeleteUser(ctx(), "ivan"), "delete")
	if ds, _ := s.ListDevices(ctx(), "ivan"); len(ds) != 0 {
		t.Errorf("devices of deleted user remain: %v", ds)
	}
	if _, err := s.GetTOTP(ctx(), "ivan"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TOTP of deleted user remains: %v", err)
	}
	if cs, _ := s.ListBypassCodes(ctx(), "ivan"); len(cs) != 0 {
		t.Errorf("bypass codes of deleted user remain: %v", cs)
	}
	if ds, _ := s.ListDevices(ctx(), "judy"); len(ds) != 1 {
		t.Errorf("another user's device went too: %v", ds)
	}
	// A directory (LDAP) user has no local record, only devices and factors.
	must(t, s.CreateDevice(ctx(), device("d3", "ldapuser")), "device of a directory user")
	must(t, s.PutTOTP(ctx(), totp("ldapuser")), "totp of a directory user")
	must(t, s.DeleteUser(ctx(), "ldapuser"), "delete a directory user's factors")
	if ds, _ := s.ListDevices(ctx(), "ldapuser"); len(ds) != 0 {
		t.Errorf("devices of a directory user remain: %v", ds)
	}
	wantErr(t, s.DeleteUser(ctx(), "ldapuser"), store.ErrNotFound, "delete when nothing is left")
}

// testUsersByteOrder: both backends list by byte order, whatever the
// database's locale would do with punctuation and accents.
func testUsersByteOrder(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	names := []string{"ab", "a_b", "a-b", "a.b", "b", "ä", "z", "a b"}
	for _, n := range names {
		must(t, s.CreateUsers(ctx(), user(n)), "create "+n)
	}
	list, err := s.ListUsers(ctx())
	must(t, err, "list")
	var got []string
	for _, u := range list {
		got = append(got, u.Name)
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("list order %q, want byte order %q", got, want)
	}
}

func testUsersNoLostUpdates(t *testing.T, newDB NewDB) {
	o := newDB(t)
	a, b := openWith(t, o), openWith(t, o) // two nodes
	u := user("kate")
	u.Groups = nil
	must(t, a.CreateUsers(ctx(), u), "create")
	const writers, each = 8, 5
	ok, errs := race(writers, func(i int) error {
		s := a
		if i%2 == 1 {
			s = b
		}
		for j := 0; j < each; j++ {
			if _, err := s.UpdateUser(ctx(), "kate", func(u store.User) (store.User, error) {
				u.Groups = append(u.Groups, fmt.Sprintf("g%02d-%02d", i, j))
				return u, nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if ok != writers {
		t.Fatalf("concurrent updates failed: %v", errs)
	}
	got, err := a.GetUser(ctx(), "kate")
	must(t, err, "get")
	if len(got.Groups) != writers*each {
		t.Fatalf("lost updates: %d groups, want %d", len(got.Groups), writers*each)
	}
}

func testDevicesCRUD(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	d := device("dev-1", "lena")
	must(t, s.CreateDevice(ctx(), d), "create")
	wantErr(t, s.CreateDevice(ctx(), d), store.ErrConflict, "duplicate id")
	bad := device("", "lena")
	wantErr(t, s.CreateDevice(ctx(), bad), store.ErrInvalid, "no id")
	must(t, s.CreateDevice(ctx(), device("dev-2", "lena")), "create second")

	got, err := s.GetDevice(ctx(), "dev-1")
	must(t, err, "get")
	if got.User != "lena" || got.KeyAlg != "ES256" || !bytes.Equal(got.PublicJWK, d.PublicJWK) || got.PushToken != "tok-dev-1" ||
		!bytes.Equal(got.Posture, d.Posture) || got.Status != store.DeviceActive || !got.CreatedAt.Equal(ts) || !got.LastSeenAt.IsZero() {
		t.Fatalf("round trip: %+v", got)
	}
	list, err := s.ListDevices(ctx(), "lena")
	must(t, err, "list")
	if len(list) != 2 {
		t.Fatalf("list = %d devices, want 2", len(list))
	}
	revoked := ts.Add(time.Minute)
	_, err = s.UpdateDevice(ctx(), "dev-1", func(d store.Device) (store.Device, error) {
		d.Status, d.RevokedAt, d.PushTokenStale = store.DeviceRevoked, revoked, true
		return d, nil
	})
	must(t, err, "revoke")
	got, _ = s.GetDevice(ctx(), "dev-1")
	if got.Status != store.DeviceRevoked || !got.RevokedAt.Equal(revoked) || !got.PushTokenStale {
		t.Fatalf("after revoke: %+v", got)
	}
	_, err = s.UpdateDevice(ctx(), "dev-1", func(d store.Device) (store.Device, error) { d.User = "mallory"; return d, nil })
	wantErr(t, err, store.ErrInvalid, "moving a device to another user")
	_, err = s.GetDevice(ctx(), "nope")
	wantErr(t, err, store.ErrNotFound, "get missing")
}

func testDevicesNoLostUpdates(t *testing.T, newDB NewDB) {
	s := open(t, newDB)
	must(t, s.CreateDevice(ctx(), device("dev-c", "mike")), "create")
	const n = 20
	ok, errs := race(n, func(int) error {
		_, err := s.UpdateDevice(ctx(), "dev-c", func(d store.Device) (store.Device, error) {
			d.AppVersion += "x"
			return d, nil
		})
		return err
	})
	if ok != n {
		t.Fatalf("updates failed: %v", errs)
	}
	got, _ := s.GetDevice(ctx(), "dev-c")
	if got.AppVersion != "1.0"+strings.Repeat("x", n) {
		t.Fatalf("lost updates: app version %q", got.AppVersion)
	}
}
