package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/store"
)

// importColumns are the CSV columns `users import` reads; name is required.
var importColumns = []string{"name", "display_name", "email", "groups", "password", "status"}

func (c *cli) usersImportCommand() *cobra.Command {
	var update, dryRun bool
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Import local users from a CSV file",
		Long: `Import local users from a CSV file ("-" reads standard input).

The first row names the columns: name (required), display_name, email,
groups (separated by ';'), password (hashed on import; leave empty for no
password), status (active or disabled; default active).

Every row is checked before anything is written; if any row is wrong,
nothing is imported and every problem is listed with its line. New users
are created in one transaction. Users that exist already are an error
unless --update is given, which updates their non-empty fields.`,
		Args: args(1, "FILE.csv"),
		RunE: c.withAdmin(func(cmd *cobra.Command, ad *admin, a []string) error {
			ctx := cmd.Context()
			var r io.Reader = c.stdin
			if a[0] != "-" {
				f, err := os.Open(a[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r = f
			}
			rows, err := parseImport(r, a[0])
			if err != nil {
				return err
			}
			return c.importUsers(ctx, ad, rows, update, dryRun)
		}),
	}
	cmd.Flags().BoolVar(&update, "update", false, "update users that exist already")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the file and report what would change, write nothing")
	return cmd
}

// importRow is one checked CSV row.
type importRow struct {
	line     int
	user     store.User
	password string
	has      map[string]bool // columns present and non-empty in this row
}

// parseImport reads and checks the whole file; it returns every problem at once.
func parseImport(r io.Reader, name string) ([]importRow, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file (the first row must name the columns: %s)", name, strings.Join(importColumns, ","))
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	var problems []string
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(importColumns, h) {
			problems = append(problems, fmt.Sprintf("%s:1: unknown column %q (known: %s)", name, h, strings.Join(importColumns, ", ")))
			continue
		}
		if _, dup := col[h]; dup {
			problems = append(problems, fmt.Sprintf("%s:1: column %q twice", name, h))
		}
		col[h] = i
	}
	if _, ok := col["name"]; !ok {
		problems = append(problems, fmt.Sprintf("%s:1: no name column", name))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	var (
		rows []importRow
		seen = map[string]int{}
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A *csv.ParseError names its own line; the reader can go on
			// after one, but not after an I/O error.
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				continue
			}
			break
		}
		line, _ := cr.FieldPos(0)
		get := func(k string) string {
			if i, ok := col[k]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		row := importRow{line: line, has: map[string]bool{}}
		for _, k := range importColumns {
			row.has[k] = get(k) != ""
		}
		n, err := store.NormalizeUsername(get("name"))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", name, line, err))
			continue
		}
		if first, dup := seen[n]; dup {
			problems = append(problems, fmt.Sprintf("%s:%d: user %q is also on line %d", name, line, n, first))
			continue
		}
		seen[n] = line
		status := store.UserStatus(strings.ToLower(get("status")))
		switch status {
		case "":
			status = store.UserActive
		case store.UserActive, store.UserDisabled:
		default:
			problems = append(problems, fmt.Sprintf("%s:%d: status %q is not active or disabled", name, line, get("status")))
			continue
		}
		var groups []string
		for _, g := range strings.Split(get("groups"), ";") {
			if g = strings.TrimSpace(g); g != "" {
				groups = append(groups, g)
			}
		}
		row.user = store.User{Name: n, DisplayName: get("display_name"), Email: get("email"), Groups: groups, Status: status}
		row.password = get("password")
		rows = append(rows, row)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return rows, nil
}

func (c *cli) importUsers(ctx context.Context, ad *admin, rows []importRow, update, dryRun bool) error {
	existing := map[string]bool{}
	users, err := ad.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		existing[u.Name] = true
	}
	var create, change []importRow
	var problems []string
	for _, r := range rows {
		switch {
		case !existing[r.user.Name]:
			create = append(create, r)
		case update:
			change = append(change, r)
		default:
			problems = append(problems, fmt.Sprintf("line %d: user %q exists already (use --update to update it)", r.line, r.user.Name))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	if dryRun {
		fmt.Fprintf(c.stdout, "dry run: would create %d and update %d users\n", len(create), len(change))
		return nil
	}
	now := c.now()
	hash := func(r importRow) (string, error) {
		if r.password == "" {
			return "", nil
		}
		return local.HashPassword(ad.cfg.Passwords.Argon2id, r.password)
	}
	newUsers := make([]store.User, 0, len(create))
	for _, r := range create {
		u := r.user
		u.CreatedAt, u.UpdatedAt = now, now
		if u.PasswordHash, err = hash(r); err != nil {
			return fmt.Errorf("line %d: %w", r.line, err)
		}
		newUsers = append(newUsers, u)
	}
	if len(newUsers) > 0 {
		if err := ad.store.CreateUsers(ctx, newUsers...); err != nil {
			return fmt.Errorf("nothing was imported: %w", err)
		}
	}
	updated := 0
	for _, r := range change {
		pw, err := hash(r)
		if err != nil {
			return fmt.Errorf("line %d: %w (created %d users and updated %d before it)", r.line, err, len(newUsers), updated)
		}
		_, err = ad.store.UpdateUser(ctx, r.user.Name, func(u store.User) (store.User, error) {
			if r.has["display_name"] {
				u.DisplayName = r.user.DisplayName
			}
			if r.has["email"] {
				u.Email = r.user.Email
			}
			if r.has["groups"] {
				u.Groups = r.user.Groups
			}
			if r.has["status"] {
				u.Status = r.user.Status
			}
			if pw != "" {
				u.PasswordHash = pw
			}
			u.UpdatedAt = now
			return u, nil
		})
		if err != nil {
			return fmt.Errorf("line %d: %w (created %d users and updated %d before it)", r.line, err, len(newUsers), updated)
		}
		updated++
	}
	fmt.Fprintf(c.stdout, "imported: %d created, %d updated\n", len(newUsers), updated)
	// One event per user, so the log answers "when did this user appear?".
	for _, u := range newUsers {
		if err := ad.audit(ctx, "user.create", u.Name, store.ResultSuccess, "import", nil); err != nil {
			return err
		}
	}
	for _, r := range change {
		if err := ad.audit(ctx, "user.update", r.user.Name, store.ResultSuccess, "import", nil); err != nil {
			return err
		}
	}
	return nil
}
