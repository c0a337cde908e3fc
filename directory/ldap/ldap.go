package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
)

// Interface guards.
var (
	_ directory.Directory        = (*dir)(nil)
	_ directory.NeedsPassword    = (*dir)(nil)
	_ interface{ Close() error } = (*dir)(nil)
)

type dir struct {
	name         string
	cfg          Config
	logger       *slog.Logger
	bindPassword string
	hostport     string
	ldaps        bool
	tls          *tls.Config
	userAttrs    []string
	pool         *pool
}

// Open returns the LDAP directory called name. It applies the defaults,
// validates cfg, reads the bind password file and the CA file, and tries one
// connection: a server that does not answer is logged as a warning (the
// bridge starts; logins fail with ErrUnavailable until it answers), a
// service account the server refuses is an error.
func Open(ctx context.Context, name string, cfg Config, logger *slog.Logger) (directory.Directory, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("directory", name)
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ldap directory %q: %w", name, err)
	}
	d := &dir{name: name, cfg: cfg, logger: logger, bindPassword: cfg.BindPassword}
	if cfg.BindPasswordFile != "" {
		b, err := os.ReadFile(cfg.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("ldap directory %q: bind_password_file: %w", name, err)
		}
		d.bindPassword = strings.TrimRight(string(b), "\r\n")
		if d.bindPassword == "" {
			return nil, fmt.Errorf("ldap directory %q: bind_password_file: %s is empty", name, cfg.BindPasswordFile)
		}
	}
	u, _ := url.Parse(cfg.URL) // Validate parsed it
	d.ldaps = u.Scheme == "ldaps"
	port := u.Port()
	if port == "" {
		port = "389"
		if d.ldaps {
			port = "636"
		}
	}
	d.hostport = net.JoinHostPort(u.Hostname(), port)
	d.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if cfg.ServerName != "" {
		d.tls.ServerName = cfg.ServerName
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ldap directory %q: ca_file: %w", name, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap directory %q: ca_file: no PEM certificates in %s", name, cfg.CAFile)
		}
		d.tls.RootCAs = roots
	}
	if cfg.InsecureSkipVerify && (d.ldaps || cfg.StartTLS) {
		d.tls.InsecureSkipVerify = true
		logger.Warn("LDAP server certificate is not verified (insecure_skip_verify): never do this in production", "url", cfg.URL)
	}
	if cfg.AnonymousBind {
		logger.Warn("LDAP searches bind anonymously (anonymous_bind): the server lets anyone read its users", "url", cfg.URL)
	}
	if !d.ldaps && !cfg.StartTLS {
		logger.Warn("LDAP passwords are sent in clear (ldap:// without start_tls, allow_insecure_plaintext)", "url", cfg.URL)
	}
	d.userAttrs = []string{cfg.Attributes.Username}
	for _, a := range []string{cfg.Attributes.DisplayName, cfg.Attributes.Email} {
		if a != "" {
			d.userAttrs = append(d.userAttrs, a)
		}
	}
	if cfg.Groups.Mode == GroupsMemberOf {
		d.userAttrs = append(d.userAttrs, cfg.Groups.Attribute)
	}
	d.pool = newPool(cfg.PoolSize, cfg.MaxConnections)

	if err := d.Ping(ctx); err != nil {
		if errors.Is(err, errServiceAccount) {
			d.Close()
			return nil, fmt.Errorf("ldap directory %q: %w", name, err)
		}
		logger.WarnContext(ctx, "LDAP server does not answer yet", "err", err)
	}
	return d, nil
}

func (d *dir) Name() string        { return d.name }
func (d *dir) NeedsPassword() bool { return true }

// Close closes the idle connections; connections in use are closed when
// their request ends.
func (d *dir) Close() error {
	d.pool.close()
	return nil
}

// Ping checks that a service-bound connection can be had.
func (d *dir) Ping(ctx context.Context) error {
	return d.withConn(ctx, func(*session) error { return nil })
}

// session is one use of a connection.
type session struct {
	c *goldap.Conn
	// dirty is set while the connection is not bound as the service account.
	dirty bool
	// userBound is set once a user bind was sent: the request is not
	// retried after that (a retry would count twice towards lock-outs).
	userBound bool
}

// withConn runs fn on a service-bound connection from the pool. A pooled
// connection that turns out broken is discarded and fn retried once on a
// new one.
func (d *dir) withConn(ctx context.Context, fn func(*session) error) error {
	for attempt := 0; ; attempt++ {
		c, err := d.pool.get(ctx)
		switch {
		case errors.Is(err, errPoolClosed):
			return fmt.Errorf("%w: %s: %w", directory.ErrUnavailable, d.cfg.URL, err)
		case err != nil:
			return fmt.Errorf("%w: %s: waiting for a connection: %w", directory.ErrUnavailable, d.cfg.URL, err)
		}
		reused := c != nil
		if c == nil {
			if c, err = d.dial(ctx); err != nil {
				d.pool.release()
				return err
			}
		}
		s := &session{c: c}
		err = fn(s)
		if broken(c, err) {
			d.pool.discard(c)
			if reused && attempt == 0 && !s.userBound && ctx.Err() == nil {
				// The other idle connections are likely as stale (the
				// server restarted): drop them so the retry dials.
				d.pool.drain()
				d.logger.DebugContext(ctx, "pooled LDAP connection broken, retrying on a new one", "err", err)
				continue
			}
			return d.unavailable(ctx, "connection", err)
		}
		if s.dirty {
			d.pool.discard(c)
		} else {
			d.pool.put(c)
		}
		return err
	}
}

// Authenticate finds the user, checks disabled_filter, and binds as the user
// with password. Every known user costs the same requests whatever the
// outcome (search, disabled check, user bind, service rebind), and an
// unknown one the same through decoyBind. ErrDisabled needs proof that the
// password is right: the user bind succeeded (and the entry matches
// disabled_filter), or Active Directory named a state it only reports
// after checking the password. Otherwise a refused bind is
// ErrInvalidCredentials, whatever disabled_filter says, so that a wrong
// password never tells whether an account is disabled or locked.
func (d *dir) Authenticate(ctx context.Context, username, password string) (directory.Identity, error) {
	name, err := directory.CheckLogin(ctx, username, password)
	if err != nil {
		return directory.Identity{}, err
	}
	var id directory.Identity
	err = d.withConn(ctx, func(s *session) error {
		e, err := d.findUser(ctx, s, name)
		if errors.Is(err, errUnknownUser) {
			d.decoyBind(ctx, s, password)
			return err
		}
		if err != nil {
			return err
		}
		disabled, err := d.disabledCheck(ctx, s, e.DN)
		if err != nil {
			return err
		}
		s.userBound = true
		s.dirty = true
		var res *goldap.SimpleBindResult
		bindErr := d.do(ctx, s.c, "user bind", func() (err error) { res, err = s.c.SimpleBind(d.userBindRequest(e.DN, password)); return err })
		if broken(s.c, bindErr) {
			return d.unavailable(ctx, "user bind", bindErr)
		}
		// Back to the service account whatever the outcome.
		rebindErr := d.serviceBind(ctx, s.c)
		if rebindErr == nil {
			s.dirty = false
		}
		if bindErr != nil {
			return d.userBindErr(ctx, e.DN, bindErr, ppolicyDetail(res), disabled)
		}
		if rebindErr != nil {
			return rebindErr
		}
		if disabled {
			return fmt.Errorf("%w: entry %s matches disabled_filter", directory.ErrDisabled, e.DN)
		}
		id, err = d.identity(ctx, s, name, e)
		return err
	})
	if err != nil {
		return directory.Identity{}, err
	}
	return id, nil
}

// userBindRequest is the user's simple bind, asking for the password
// policy response control (OpenLDAP ppolicy) for the audit detail.
func (d *dir) userBindRequest(dn, password string) *goldap.SimpleBindRequest {
	return goldap.NewSimpleBindRequest(dn, password, []goldap.Control{goldap.NewControlBeheraPasswordPolicy()})
}

// ppolicyDetail returns the error of a password policy response control in
// res, or "". It is audit detail only: slapd answers a locked account the
// same way (result 49, and "account locked" only with ppolicy_use_lockout)
// whether the password is right or wrong, so it proves nothing.
func ppolicyDetail(res *goldap.SimpleBindResult) string {
	if res == nil {
		return ""
	}
	for _, c := range res.Controls {
		if pp, ok := c.(*goldap.ControlBeheraPasswordPolicy); ok && pp.Error >= 0 {
			return "ppolicy: " + strings.ToLower(pp.ErrorString)
		}
	}
	return ""
}

// Lookup finds the user without a password.
func (d *dir) Lookup(ctx context.Context, username string) (directory.Identity, error) {
	name, err := directory.CheckName(ctx, username)
	if err != nil {
		return directory.Identity{}, err
	}
	var id directory.Identity
	err = d.withConn(ctx, func(s *session) error {
		e, err := d.findUser(ctx, s, name)
		if err != nil {
			return err
		}
		disabled, err := d.disabledCheck(ctx, s, e.DN)
		switch {
		case err != nil:
			return err
		case disabled:
			return fmt.Errorf("%w: entry %s matches disabled_filter", directory.ErrDisabled, e.DN)
		}
		id, err = d.identity(ctx, s, name, e)
		return err
	})
	if err != nil {
		return directory.Identity{}, err
	}
	return id, nil
}

// errUnknownUser is the detail of ErrInvalidCredentials when no entry matches.
var errUnknownUser = errors.New("unknown user")

// decoyDN names no entry: binding to it costs what a wrong password costs.
const decoyRDN = "cn=bridge-no-such-user-7f3c1a"

// decoyBind spends on an unknown user what a wrong password costs: the
// disabled check (when configured) and a bind, both against a DN that does
// not exist, then the service rebind. Without it an unknown name answers in
// a fraction of the time (one search instead of three or four round trips),
// and an attacker could list who has an account. Its outcome is ignored;
// a broken connection shows at the next use and is replaced then.
func (d *dir) decoyBind(ctx context.Context, s *session, password string) {
	dn := decoyRDN + "," + d.cfg.UserBaseDN
	_, _ = d.disabledCheck(ctx, s, dn)
	s.userBound, s.dirty = true, true
	_ = d.do(ctx, s.c, "user bind", func() error { _, err := s.c.SimpleBind(d.userBindRequest(dn, password)); return err })
	if d.serviceBind(ctx, s.c) == nil {
		s.dirty = false
	}
}

// userBindErr classifies a failed user bind. disabled says whether the
// entry matched disabled_filter, detail is the password policy control's
// error: both only add audit detail, since neither proves the password.
func (d *dir) userBindErr(ctx context.Context, dn string, err error, detail string, disabled bool) error {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return d.unavailable(ctx, "user bind", err)
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		why, provesPassword := adBindProblem(le.Err)
		if provesPassword {
			return fmt.Errorf("%w: %s", directory.ErrDisabled, why)
		}
		if why == "" {
			why = "wrong password"
		}
		if disabled {
			why += ", or account disabled or locked (entry matches disabled_filter)"
		}
		if detail != "" {
			why += " (" + detail + ")"
		}
		return fmt.Errorf("%w: %s", directory.ErrInvalidCredentials, why)
	case goldap.LDAPResultStrongAuthRequired, goldap.LDAPResultConfidentialityRequired,
		goldap.LDAPResultBusy, goldap.LDAPResultUnavailable, goldap.LDAPResultOther:
		return d.unavailable(ctx, "user bind", err)
	}
	d.logger.WarnContext(ctx, "LDAP refused the user bind", "dn", dn, "err", err)
	return fmt.Errorf("%w: user bind refused: %s", directory.ErrInvalidCredentials, errText(err))
}

// adBindProblems are the sub-codes Active Directory puts in the diagnostic
// message of a failed bind ("... data 533, ..."). AD reports 533 and 701
// only when the password is right: they are ErrDisabled. The others stay
// ErrInvalidCredentials with their own audit detail: 775 (locked out) is
// reported whatever the password, and the rest (expired or must-change
// password, logon hours, workstation) are the user's to fix, not a
// disabled account.
var adBindProblems = []struct {
	code, why      string
	provesPassword bool
}{
	{"530", "not permitted to log on at this time (AD 530)", false},
	{"531", "not permitted to log on from this workstation (AD 531)", false},
	{"532", "password expired (AD 532)", false},
	{"533", "account disabled (AD 533)", true},
	{"701", "account expired (AD 701)", true},
	{"773", "password must be changed (AD 773)", false},
	{"775", "account locked out (AD 775)", false},
}

// adBindProblem reads the AD sub-code of a failed bind: what it means and
// whether AD reports it only after checking the password. Other servers,
// and a plain wrong password (52e), return "", false.
func adBindProblem(err error) (why string, provesPassword bool) {
	if err == nil {
		return "", false
	}
	msg := err.Error()
	for _, p := range adBindProblems {
		if strings.Contains(msg, "data "+p.code+",") || strings.HasSuffix(msg, "data "+p.code) {
			return p.why, p.provesPassword
		}
	}
	return "", false
}

// timeLimit is the server-side search time limit in whole seconds.
func (d *dir) timeLimit() int {
	return max(1, int((d.cfg.Timeout.Seconds())+0.999))
}

// findUser searches the user's entry.
func (d *dir) findUser(ctx context.Context, s *session, name string) (*goldap.Entry, error) {
	filter := strings.ReplaceAll(d.cfg.UserFilter, "{username}", goldap.EscapeFilter(name))
	req := goldap.NewSearchRequest(d.cfg.UserBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, d.timeLimit(), false, filter, d.userAttrs, nil)
	var res *goldap.SearchResult
	err := d.do(ctx, s.c, "user search", func() (err error) { res, err = s.c.Search(req); return err })
	switch {
	case goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) || err == nil && len(res.Entries) > 1:
		d.logger.ErrorContext(ctx, "LDAP user filter matches more than one entry; refusing the login", "filter", filter)
		return nil, fmt.Errorf("%w: user filter matches more than one entry", directory.ErrInvalidCredentials)
	case err != nil:
		return nil, d.unavailable(ctx, "user search", err)
	case len(res.Entries) == 0:
		return nil, fmt.Errorf("%w: %w", directory.ErrInvalidCredentials, errUnknownUser)
	}
	return res.Entries[0], nil
}

// disabledCheck reports whether the entry dn matches disabled_filter (a
// base-scope search; false without a filter).
func (d *dir) disabledCheck(ctx context.Context, s *session, dn string) (bool, error) {
	if d.cfg.DisabledFilter == "" {
		return false, nil
	}
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, d.timeLimit(), false, d.cfg.DisabledFilter, []string{"1.1"}, nil)
	var res *goldap.SearchResult
	err := d.do(ctx, s.c, "disabled check", func() (err error) { res, err = s.c.Search(req); return err })
	if err != nil {
		return false, d.unavailable(ctx, "disabled check", err)
	}
	return len(res.Entries) > 0, nil
}

// identity builds the identity of entry e, reading groups as configured.
// login is the normalised name the user filter matched.
func (d *dir) identity(ctx context.Context, s *session, login string, e *goldap.Entry) (directory.Identity, error) {
	username := userName(login, e.GetEqualFoldAttributeValues(d.cfg.Attributes.Username))
	id := directory.Identity{
		Username:  username,
		Directory: d.name,
		DN:        e.DN,
	}
	if d.cfg.Attributes.DisplayName != "" {
		id.DisplayName = e.GetEqualFoldAttributeValue(d.cfg.Attributes.DisplayName)
	}
	if d.cfg.Attributes.Email != "" {
		id.Email = e.GetEqualFoldAttributeValue(d.cfg.Attributes.Email)
	}
	var groups []string
	switch d.cfg.Groups.Mode {
	case GroupsMemberOf:
		for _, g := range e.GetEqualFoldAttributeValues(d.cfg.Groups.Attribute) {
			if d.cfg.Groups.BaseDN != "" && !underDN(g, d.cfg.Groups.BaseDN) {
				d.logger.DebugContext(ctx, "group is not under groups.base_dn; skipped", "group", g)
				continue
			}
			if n := rdnValue(g, d.cfg.Groups.NameAttribute); n != "" {
				groups = append(groups, n)
			} else {
				d.logger.DebugContext(ctx, "group DN does not start with the name attribute; skipped", "group", g)
			}
		}
	case GroupsSearch:
		filter := strings.NewReplacer(
			"{dn}", goldap.EscapeFilter(e.DN),
			"{username}", goldap.EscapeFilter(username),
		).Replace(d.cfg.Groups.Filter)
		req := goldap.NewSearchRequest(d.cfg.Groups.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
			0, d.timeLimit(), false, filter, []string{d.cfg.Groups.NameAttribute}, nil)
		var res *goldap.SearchResult
		err := d.do(ctx, s.c, "group search", func() (err error) { res, err = s.c.Search(req); return err })
		if err != nil {
			return id, d.unavailable(ctx, "group search", err)
		}
		for _, g := range res.Entries {
			if n := groupName(g, d.cfg.Groups.NameAttribute); n != "" {
				groups = append(groups, n)
			}
		}
	}
	slices.Sort(groups)
	id.Groups = slices.Compact(groups)
	return id, nil
}

// userName picks the user's name among the values of the username
// attribute: the one that normalises to the login name the filter matched
// (an entry may carry several, say uid: admin and uid: mallory, and must
// not lend one user's name to another's login). When none does (the filter
// matched on another attribute) it is the login name itself, never some
// other value.
func userName(login string, values []string) string {
	for _, v := range values {
		if n, err := store.NormalizeUsername(v); err == nil && n == login {
			return n
		}
	}
	return login
}

// groupName is one name for group entry g: when the RDN of g is the name
// attribute, that RDN value (the one value that names the group), else the
// attribute's first value. A group with several cn values is still one
// group.
func groupName(g *goldap.Entry, attr string) string {
	values := g.GetEqualFoldAttributeValues(attr)
	if len(values) == 0 {
		return ""
	}
	if rdn := rdnValue(g.DN, attr); rdn != "" {
		for _, v := range values {
			if strings.EqualFold(v, rdn) {
				return v
			}
		}
	}
	return values[0]
}

// underDN reports whether dn is base or below it.
func underDN(dn, base string) bool {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return false
	}
	b, err := goldap.ParseDN(base)
	if err != nil {
		return false
	}
	return b.AncestorOfFold(d) || b.EqualFold(d)
}

// rdnValue returns the value of attr in the first RDN of dn, or "".
func rdnValue(dn, attr string) string {
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 {
		return ""
	}
	for _, a := range parsed.RDNs[0].Attributes {
		if strings.EqualFold(a.Type, attr) {
			return a.Value
		}
	}
	return ""
}
