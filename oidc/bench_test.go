package oidc

// Benchmarks of the token endpoint against a peer: zitadel's own example
// OpenID Provider (exampleop over its in-memory storage), the same op code
// as the bridge's, over maps in memory. Both providers run in this process
// on httptest servers on 127.0.0.1 and are driven over real HTTP by
// keep-alive clients, so the ratio bridge / peer in one run is what the
// bridge's durability (every request, code and token a committed row),
// audit log and checks cost. docs/benchmarks.md has the figures.
//
// The peer as shipped signs ID tokens with RS256 (a 2048-bit RSA key);
// zitadel-example-es256 is the same storage signing with ES256, as the
// bridge does by default, so that the signature is not what is compared.
//
// Run (bridge-postgres only with BRIDGE_TEST_POSTGRES_DSN set):
//
//	go test ./oidc -run '^$' -bench 'Refresh|CodeExchange' -benchtime 3s -count 5

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	exstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/keys"
	"github.com/bridge-idp/bridge/store"
	"github.com/bridge-idp/bridge/store/postgres"
	"github.com/bridge-idp/bridge/store/postgres/pgtest"
	"github.com/bridge-idp/bridge/store/sqlite"
	"github.com/bridge-idp/bridge/store/storetest"
	"github.com/bridge-idp/bridge/web"
)

// benchTarget is one provider under test, served on its own httptest
// server, as a relying party and a browser see it.
type benchTarget struct {
	// Endpoints, absolute.
	authorize, callback, token string
	clientID, secret           string
	redirectURI, scope         string
	// idParam is the query parameter of the login redirect that names the
	// authorization request.
	idParam string
	// signIn marks a stored authorization request as signed in, as the
	// provider's login UI would once the user is done.
	signIn func(ctx context.Context, id string) error
	// audited is the number of audit events written so far (the bridge
	// only; nil for the peer, which keeps none).
	audited func() int64
}

// checkAudited fails b unless at least want audit events were written
// since before (the bridge's audit path was taken, not skipped).
func (t *benchTarget) audit() int64 {
	if t.audited == nil {
		return 0
	}
	return t.audited()
}

func (t *benchTarget) checkAudited(b *testing.B, before int64, want int) {
	if t.audited == nil {
		return
	}
	b.StopTimer()
	if got := t.audited() - before; got < int64(want) {
		b.Fatalf("%d audit events written, want at least %d", got, want)
	}
}

// benchTargets are the sub-benchmarks, in order. bridge-postgres skips
// itself without BRIDGE_TEST_POSTGRES_DSN.
var benchTargets = []struct {
	name string
	new  func(b *testing.B) *benchTarget
}{
	{"bridge-sqlite", func(b *testing.B) *benchTarget { return newBridgeTarget(b, openBenchSQLite(b)) }},
	{"bridge-postgres", func(b *testing.B) *benchTarget { return newBridgeTarget(b, openBenchPostgres(b)) }},
	{"zitadel-example", func(b *testing.B) *benchTarget { return newExampleTarget(b, false) }},
	{"zitadel-example-es256", func(b *testing.B) *benchTarget { return newExampleTarget(b, true) }},
}

// --- the bridge --------------------------------------------------------

const benchUser = "alice"

func openBenchSQLite(b *testing.B) store.Store {
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bridge.db"), AuditKey: storetest.AuditKey()},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func openBenchPostgres(b *testing.B) store.Store {
	dsn := pgtest.FreshSchema(b) // skips without BRIDGE_TEST_POSTGRES_DSN
	st, err := postgres.Open(context.Background(), postgres.Config{DSN: dsn, AuditKey: storetest.AuditKey()}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

// newBridgeTarget builds the bridge's provider as cmd/bridge does, on st:
// real keys, a real sign-in flow (never reached: signIn stands in for it),
// a local directory holding the user (looked up again on every refresh)
// and the audit log written through a store.AuditBatcher.
func newBridgeTarget(b *testing.B, st store.Store) *benchTarget {
	ctx := context.Background()
	discard := slog.New(slog.DiscardHandler)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()

	audit := store.NewAuditBatcher(st, discard)
	b.Cleanup(audit.Close) // before the store closes (cleanups run last first)
	sealer, err := keys.NewSealer([]byte("oidc bench key-encryption key 32"))
	if err != nil {
		b.Fatal(err)
	}
	km, err := keys.Open(ctx, st, sealer, keys.Options{Specs: []keys.Spec{{Purpose: store.PurposeOIDC, Algorithm: keys.AlgES256}}}, discard)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.CreateUsers(ctx, store.User{Name: benchUser, DisplayName: "Alice Example", Email: "alice@example.com",
		Groups: []string{"staff", "wiki-editors"}, Status: store.UserActive, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	dir, err := local.Open("local", st, local.Argon2{Time: 1, MemoryKiB: local.MinMemoryKiB, Threads: 1}, discard)
	if err != nil {
		b.Fatal(err)
	}
	const secret = "0123456789abcdef0123456789abcdef"
	redirect := "https://wiki.example.com/callback"
	c := &Client{ID: "wiki", Secret: secret, AuthMethod: oidc.AuthMethodBasic, RedirectURIs: []string{redirect},
		Scopes: []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, scopeGroups, oidc.ScopeOfflineAccess},
		App:    web.App{ID: "wiki", Name: "Wiki", Channel: "oidc", Directory: dir, SessionReuse: true}}

	// Every sign-in comes from its own address among 4096, as many users'
	// would: one benchmark client would otherwise meet the per-address
	// limit on /authorize (120 a minute). The limiter still runs.
	var n atomic.Uint32
	clientIP := func(*http.Request) string {
		i := n.Add(1) % 4096
		return fmt.Sprintf("10.9.%d.%d", i>>8, i&0xff)
	}
	flow, err := web.New(web.Config{BaseURL: base, SessionLifetime: time.Hour, Key: []byte("oidc bench CSRF key, 32 bytes !!")},
		func(channel, id string) (web.App, bool) { return c.App, channel == "oidc" && id == c.ID },
		web.Deps{Store: st, Push: noPush{}, Audit: audit, ClientIP: clientIP, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	var key [32]byte
	copy(key[:], "oidc bench token crypto key 32 b")
	p, err := New(Config{
		Issuer: base + "/oidc", CodeLifetime: time.Minute, AccessTokenLifetime: 10 * time.Minute, IDTokenLifetime: 10 * time.Minute,
		RefreshTokenLifetime: 8 * time.Hour, Clients: []*Client{c}, CryptoKey: key,
	}, Deps{Store: st, Replay: st, Keys: km, Flow: flow, Audit: audit, Logger: discard})
	if err != nil {
		b.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	b.Cleanup(srv.Close)
	return &benchTarget{
		authorize: base + "/oidc/authorize", callback: base + "/oidc/authorize/callback", token: base + "/oidc/oauth/token",
		clientID: c.ID, secret: secret, redirectURI: redirect, scope: "openid profile email groups offline_access", idParam: "id",
		audited: func() int64 {
			h, err := st.AuditHead(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			return h.Seq
		},
		signIn: func(ctx context.Context, id string) error {
			return p.benchSignIn(ctx, id, web.Result{User: benchUser, DisplayName: "Alice Example", Email: "alice@example.com",
				Groups: []string{"staff", "wiki-editors"}, Directory: dir.Name(), AuthTime: p.now(), AMR: []string{"pwd", "swk", "mfa"},
				DeviceID: "bench-phone"})
		},
	}
}

// benchSignIn does what finish does once the sign-in pages are done, without
// them: the signed-in user goes into the stored request (bound to the
// browser when /authorize stored it), and the sign-in is audited.
func (p *Provider) benchSignIn(ctx context.Context, id string, res web.Result) error {
	a, err := p.getRequest(ctx, id)
	if err != nil {
		return err
	}
	_, err = p.st.UpdateGrant(ctx, store.GrantAuthRequest, id, p.now(), func(g store.Grant) (store.Grant, error) {
		var cur authRequest
		if err := json.Unmarshal(g.Data, &cur); err != nil {
			return g, err
		}
		if cur.User != nil {
			return g, errors.New("already signed in")
		}
		cur.User = &res
		data, err := json.Marshal(&cur)
		g.Data, g.Subject = data, res.User
		return g, err
	})
	if err != nil {
		return err
	}
	p.audit(ctx, res.User, "oidc.authorize", a.ClientID, store.ResultSuccess, "", map[string]string{"amr": strings.Join(res.AMR, " ")})
	return nil
}

// --- the peer: zitadel's example OP -------------------------------------

// es256Storage is the example's storage signing ID tokens with an ES256
// key instead of its RS256 one.
type es256Storage struct {
	*exstorage.Storage
	key signingKey
	pub publicKey
}

func (s *es256Storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }
func (s *es256Storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}
func (s *es256Storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{s.pub}, nil }

// newExampleTarget serves exampleop.SetupServer over the example's
// in-memory storage, with one web client (client_secret_basic, refresh
// tokens allowed).
func newExampleTarget(b *testing.B, es256 bool) *benchTarget {
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	issuer := base + "/"
	const redirect = "http://127.0.0.1:9999/auth/callback"
	users := exstorage.NewUserStore(issuer) // its test user is test-user@127.0.0.1
	st := exstorage.NewStorageWithClients(users, map[string]*exstorage.Client{"web": exstorage.WebClient("web", "secret", redirect)})
	var s exampleop.Storage = st
	if es256 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		s = &es256Storage{Storage: st, key: signingKey{id: "es1", alg: jose.ES256, key: k}, pub: publicKey{id: "es1", alg: jose.ES256, key: &k.PublicKey}}
	}
	// SetupServer makes its logger the process's default, which its
	// request logging middleware writes to: a discarding one, put back
	// afterwards.
	prev := slog.Default()
	b.Cleanup(func() { slog.SetDefault(prev) })
	srv.Config.Handler = exampleop.SetupServer(issuer, s, slog.New(slog.DiscardHandler), false)
	srv.Start()
	b.Cleanup(srv.Close)
	return &benchTarget{
		authorize: base + "/auth", callback: base + "/auth/callback", token: base + "/oauth/token",
		clientID: "web", secret: "secret", redirectURI: redirect, scope: "openid profile email offline_access", idParam: "authRequestID",
		signIn: func(_ context.Context, id string) error {
			return st.CheckUsernamePassword("test-user@127.0.0.1", "verysecure", id)
		},
	}
}

// --- the relying party and the browser ---------------------------------

// benchClient is one relying party with one user's browser: a keep-alive
// HTTP client that does not follow redirects, with a cookie jar.
type benchClient struct {
	t    *benchTarget
	http *http.Client
}

func (t *benchTarget) client(b *testing.B) *benchClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchClient{t: t, http: &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

func (c *benchClient) do(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// redirect does a GET that must answer with a redirect, and returns its
// target.
func (c *benchClient) redirect(u string) (*url.URL, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, truncate(string(body), 300))
	}
	return url.Parse(resp.Header.Get("Location"))
}

// authorize sends the browser to /authorize, signs the user in and
// follows the callback: it returns the code and the PKCE verifier.
func (c *benchClient) authorize(ctx context.Context) (code, verifier string, err error) {
	buf := make([]byte, 32)
	rand.Read(buf)
	verifier = base64.RawURLEncoding.EncodeToString(buf)
	sum := sha256.Sum256([]byte(verifier))
	rand.Read(buf[:16])
	state := base64.RawURLEncoding.EncodeToString(buf[:16])
	q := url.Values{
		"client_id": {c.t.clientID}, "redirect_uri": {c.t.redirectURI}, "response_type": {"code"}, "scope": {c.t.scope},
		"state": {state}, "nonce": {state}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	login, err := c.redirect(c.t.authorize + "?" + q.Encode())
	if err != nil {
		return "", "", err
	}
	id := login.Query().Get(c.t.idParam)
	if id == "" {
		return "", "", fmt.Errorf("authorize sent the browser to %s, not to a login page", login)
	}
	if err := c.t.signIn(ctx, id); err != nil {
		return "", "", fmt.Errorf("sign-in: %w", err)
	}
	back, err := c.redirect(c.t.callback + "?id=" + url.QueryEscape(id))
	if err != nil {
		return "", "", err
	}
	rq := back.Query()
	if rq.Get("state") != state || rq.Get("code") == "" || !strings.HasPrefix(back.String(), c.t.redirectURI) {
		return "", "", fmt.Errorf("callback answered %s", back)
	}
	return rq.Get("code"), verifier, nil
}

// tokenRequest posts form to the token endpoint with client_secret_basic.
func (c *benchClient) tokenRequest(form url.Values) (tokenResponse, error) {
	var tr tokenResponse
	req, err := http.NewRequest(http.MethodPost, c.t.token, strings.NewReader(form.Encode()))
	if err != nil {
		return tr, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.t.clientID), url.QueryEscape(c.t.secret))
	resp, body, err := c.do(req)
	if err != nil {
		return tr, err
	}
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("token endpoint: %d %s", resp.StatusCode, truncate(string(body), 300))
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return tr, err
	}
	if tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
		return tr, fmt.Errorf("token endpoint: incomplete answer %s", truncate(string(body), 300))
	}
	return tr, nil
}

func (c *benchClient) exchange(code, verifier string) (tokenResponse, error) {
	return c.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.t.redirectURI},
		"code_verifier": {verifier}})
}

func (c *benchClient) refresh(token string) (tokenResponse, error) {
	return c.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
}

// signedIn runs a whole code flow and returns its first refresh token.
func (c *benchClient) signedIn(b *testing.B) string {
	code, verifier, err := c.authorize(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	tr, err := c.exchange(code, verifier)
	if err != nil {
		b.Fatal(err)
	}
	return tr.RefreshToken
}

// reportRate reports ops per second of the timed part, as unit.
func reportRate(b *testing.B, ops int, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(ops)/s, unit)
	}
}

// --- the benchmarks ----------------------------------------------------

// BenchmarkRefresh: one refresh-token grant per iteration, from one client
// waiting for each answer; each answer's refresh token is the next one's
// (rotation), and each answer carries a new ID token.
func BenchmarkRefresh(b *testing.B) {
	for _, tc := range benchTargets {
		b.Run(tc.name, func(b *testing.B) {
			t := tc.new(b)
			c := t.client(b)
			tok := c.signedIn(b)
			before := t.audit()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				tr, err := c.refresh(tok)
				if err != nil {
					b.Fatal(err)
				}
				tok = tr.RefreshToken
			}
			reportRate(b, b.N, "req/s")
			t.checkAudited(b, before, b.N) // oidc.token
		})
	}
}

// benchParallelism is how many relying parties per GOMAXPROCS refresh at
// once in BenchmarkRefreshParallel: 8 on 2 cores.
const benchParallelism = 4

// BenchmarkRefreshParallel is BenchmarkRefresh with several clients at
// once, each with its own chain of refresh tokens: the throughput of a
// node rather than the latency of one request.
func BenchmarkRefreshParallel(b *testing.B) {
	for _, tc := range benchTargets {
		b.Run(tc.name, func(b *testing.B) {
			t := tc.new(b)
			var mu sync.Mutex
			var chains []*benchClient
			var toks []string
			for range benchParallelism * runtime.GOMAXPROCS(0) {
				c := t.client(b)
				chains, toks = append(chains, c), append(toks, c.signedIn(b))
			}
			b.SetParallelism(benchParallelism)
			before := t.audit()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				if len(chains) == 0 {
					mu.Unlock()
					b.Error("more goroutines than clients")
					return
				}
				c, tok := chains[0], toks[0]
				chains, toks = chains[1:], toks[1:]
				mu.Unlock()
				for pb.Next() {
					tr, err := c.refresh(tok)
					if err != nil {
						b.Error(err)
						return
					}
					tok = tr.RefreshToken
				}
			})
			reportRate(b, b.N, "req/s")
			t.checkAudited(b, before, b.N)
		})
	}
}

// BenchmarkCodeExchange: per iteration, a whole sign-in as the browser and
// the relying party see it: /authorize (the request stored, the browser
// sent to the login page), the request marked as signed in (as the login
// UI would, without its pages), the callback (the code issued) and the
// code exchanged for tokens with PKCE (S256) and client_secret_basic.
// ns/op is the whole; token-ns/op is the token request alone, timed
// apart within the same iterations.
func BenchmarkCodeExchange(b *testing.B) {
	for _, tc := range benchTargets {
		b.Run(tc.name, func(b *testing.B) {
			t := tc.new(b)
			c := t.client(b)
			c.signedIn(b) // warm the connection
			ctx := context.Background()
			before := t.audit()
			var token time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				code, verifier, err := c.authorize(ctx)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if _, err := c.exchange(code, verifier); err != nil {
					b.Fatal(err)
				}
				token += time.Since(start)
			}
			b.ReportMetric(float64(token.Nanoseconds())/float64(b.N), "token-ns/op")
			b.ReportMetric(float64(b.N)/token.Seconds(), "token-req/s")
			reportRate(b, b.N, "flows/s")
			t.checkAudited(b, before, 2*b.N) // oidc.authorize, oidc.token
		})
	}
}
