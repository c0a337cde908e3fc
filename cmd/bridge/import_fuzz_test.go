package main

import (
	"strings"
	"testing"

	"github.com/bridge-idp/bridge/store"
)

// FuzzParseImport: any CSV gives rows or an error, never a panic, and every
// row it accepts holds a normalised user name and a valid status.
func FuzzParseImport(f *testing.F) {
	for _, seed := range []string{
		"name,display_name,email,groups,password,status\nbob,Bob,bob@example.org,vpn;staff,pw,\n",
		"name\nAlice\n\"quoted, name\"\n",
		"\ufeffname,status\ncarol,disabled\n",
		"name,name\nx,y\n",
		"email\nno-name@example.org\n",
		"name,groups\n\"unterminated\n",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		rows, err := parseImport(strings.NewReader(data), "fuzz.csv")
		if err != nil {
			if rows != nil {
				t.Fatal("rows returned with an error")
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			n, err := store.NormalizeUsername(r.user.Name)
			if err != nil || n != r.user.Name {
				t.Fatalf("accepted unnormalised name %q", r.user.Name)
			}
			if seen[n] {
				t.Fatalf("accepted %q twice", n)
			}
			seen[n] = true
			if r.user.Status != store.UserActive && r.user.Status != store.UserDisabled {
				t.Fatalf("accepted status %q", r.user.Status)
			}
		}
	})
}
