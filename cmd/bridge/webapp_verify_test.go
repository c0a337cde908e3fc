package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/pushauth/webapp"
	"github.com/bridge-idp/bridge/web"
	"github.com/chromedp/chromedp"
)

// serveApp serves only the web app (no bridge) on localhost and returns
// its base URL: for tests of the app's own code in the browser.
func serveApp(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	strs, err := web.Strings("app.")
	if err != nil {
		t.Fatal(err)
	}
	h, err := webapp.New(webapp.Config{Name: appName, BaseURL: base, RPID: "localhost", Strings: strs})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return base
}

var b64u = base64.RawURLEncoding

// edJWS is a compact JWS signed with key.
func edJWS(t *testing.T, key ed25519.PrivateKey, header, claims any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64u.EncodeToString(h) + "." + b64u.EncodeToString(c)
	return input + "." + b64u.EncodeToString(ed25519.Sign(key, []byte(input)))
}

// edThumbprint is the RFC 7638 thumbprint of an Ed25519 public key.
func edThumbprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64u.EncodeToString(pub) + `"}`))
	return b64u.EncodeToString(sum[:])
}

// The app's checks run in the browser, on its own modules: a challenge is
// shown only when it verifies with a trusted push key and names this
// bridge, this user and the id asked for, in time (§7.2); endorsements are
// followed from trusted keys only (§14); activation links are refused as
// §4.1 says, and when they name another bridge.
func TestWebAppChecksInTheBrowser(t *testing.T) {
	c := startPhone(t)
	base := serveApp(t)
	c.openApp(base + "/app/")

	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	kid := edThumbprint(pub)
	now := time.Now().Unix()
	claims := func(change func(m map[string]any)) map[string]any {
		m := map[string]any{"iss": base, "cid": "C4C5SCSktVEgRDojRkk2CEvkSLo", "sub": "alice", "app": "vpn", "app_name": "Corporate VPN",
			"channel": "radius", "ip": "198.51.100.7", "iat": now, "exp": now + 60, "nm": 2}
		if change != nil {
			change(m)
		}
		return m
	}
	header := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "bridge-challenge+jwt"}
	good := edJWS(t, key, header, claims(nil))
	// One character changed in the signature, and a payload swapped
	// under the signature of the good one.
	flip := func(s string, i int) string {
		ch := byte('A')
		if s[i] == 'A' {
			ch = 'B'
		}
		return s[:i] + string(ch) + s[i+1:]
	}
	tampered := flip(good, len(good)-10)
	swapped := func() string {
		other := edJWS(t, key, header, claims(func(m map[string]any) { m["app_name"] = "Something else" }))
		return other[:strings.LastIndex(other, ".")] + good[strings.LastIndex(good, "."):]
	}()
	cases := []struct {
		name, jws, id string
		ok            bool
	}{
		{"valid", good, "C4C5SCSktVEgRDojRkk2CEvkSLo", true},
		{"valid without number matching", edJWS(t, key, header, claims(func(m map[string]any) { delete(m, "nm") })), "C4C5SCSktVEgRDojRkk2CEvkSLo", true},
		{"signed by another key under the trusted kid", edJWS(t, other, header, claims(nil)), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"signature altered", tampered, "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"payload under another's signature", swapped, "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"alg ES256", edJWS(t, key, map[string]any{"alg": "ES256", "kid": kid, "typ": "bridge-challenge+jwt"}, claims(nil)), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"typ of an answer", edJWS(t, key, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "bridge-answer+jwt"}, claims(nil)), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"crit header", edJWS(t, key, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "bridge-challenge+jwt", "crit": []string{"x"}}, claims(nil)), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"another bridge", edJWS(t, key, header, claims(func(m map[string]any) { m["iss"] = "https://evil.example" })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"another user", edJWS(t, key, header, claims(func(m map[string]any) { m["sub"] = "bob" })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"another challenge's id", good, "OtherChallengeId", false},
		{"expired", edJWS(t, key, header, claims(func(m map[string]any) { m["exp"] = now - 60 })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"no expiry", edJWS(t, key, header, claims(func(m map[string]any) { delete(m, "exp") })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"17 digits to type", edJWS(t, key, header, claims(func(m map[string]any) { m["nm"] = 17 })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"fractional digits", edJWS(t, key, header, claims(func(m map[string]any) { m["nm"] = 2.5 })), "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
		{"not a JWS", "eyJhbGciOiJFZERTQSJ9.e30", "C4C5SCSktVEgRDojRkk2CEvkSLo", false},
	}
	for _, tc := range cases {
		t.Run("challenge "+tc.name, func(t *testing.T) {
			c.t = t
			item, _ := json.Marshal(map[string]string{"id": tc.id, "state": "pending", "challenge": tc.jws})
			got := evalAsync[string](c, "verify", fmt.Sprintf(`
				const m = await import('/app/challenges.js');
				const acct = {id: 'test', baseURL: %q, user: 'alice', trusted: {%q: %q}};
				try { const v = await m.verifyChallenge(acct, %s); return 'ok ' + v.claims.app_name + ' ' + v.claims.nm; }
				catch (e) { return (e instanceof m.ChallengeError ? 'refused: ' : 'error: ') + e.message; }`,
				base, kid, b64u.EncodeToString(pub), item))
			switch {
			case tc.ok && got != "ok Corporate VPN 2" && got != "ok Corporate VPN 0":
				t.Errorf("refused a valid challenge: %s", got)
			case !tc.ok && got[:min(len(got), 9)] != "refused: ":
				t.Errorf("want refused, got %s", got)
			}
		})
	}

	t.Run("endorsements", func(t *testing.T) {
		c.t = t
		// a (trusted) endorses b, b endorses c (a chain, listed out of
		// order); x (not trusted) endorses y.
		keys := map[string]ed25519.PrivateKey{}
		pubs := map[string]ed25519.PublicKey{}
		for _, n := range []string{"a", "b", "c", "x", "y"} {
			pubs[n], keys[n], _ = ed25519.GenerateKey(rand.Reader)
		}
		endorse := func(by, of string) string {
			return edJWS(t, keys[by], map[string]any{"alg": "EdDSA", "kid": edThumbprint(pubs[by]), "typ": "bridge-push-key+jwt"},
				map[string]any{"jwk": map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64u.EncodeToString(pubs[of])}, "iat": now})
		}
		list, _ := json.Marshal([]string{endorse("b", "c"), endorse("x", "y"), endorse("a", "b"), "garbage"})
		got := evalAsync[map[string]string](c, "endorse", fmt.Sprintf(`
			const m = await import('/app/jose.js');
			const trusted = {%q: %q};
			await m.endorse(trusted, %s);
			return trusted;`, edThumbprint(pubs["a"]), b64u.EncodeToString(pubs["a"]), list))
		want := map[string]string{}
		for _, n := range []string{"a", "b", "c"} {
			want[edThumbprint(pubs[n])] = b64u.EncodeToString(pubs[n])
		}
		if len(got) != len(want) {
			t.Errorf("trusted after the endorsements: %v, want a, b and c only", got)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("key %s: trusted %q, want %q", k, got[k], v)
			}
		}
	})

	t.Run("activation links", func(t *testing.T) {
		c.t = t
		q := url.Values{"v": {"1"}, "url": {base}, "code": {"OTZyr3hWxF8KMsW3.2c52DEZtI-y9Od8dQdRknKj45qdPlorMyPGKlauh3l0"},
			"pk": {kid}, "user": {"alice"}}
		link := func(change func(v url.Values)) string {
			v := url.Values{}
			for k, x := range q {
				v[k] = append([]string(nil), x...)
			}
			if change != nil {
				change(v)
			}
			return base + "/app/#enroll?" + v.Encode()
		}
		long := make([]byte, 2100)
		for i := range long {
			long[i] = 'a'
		}
		for _, tc := range []struct{ name, link, want string }{
			{"valid", link(nil), "ok"},
			{"valid, base URL with a slash", link(func(v url.Values) { v.Set("url", base+"/") }), "ok"},
			{"only the fragment", "#enroll?" + link(nil)[len(base+"/app/#enroll?"):], "ok"},
			{"version 2", link(func(v url.Values) { v.Set("v", "2") }), "app.link_invalid"},
			{"another bridge", link(func(v url.Values) { v.Set("url", "https://bridge.example.com") }), "app.link_other_bridge"},
			{"url with a query", link(func(v url.Values) { v.Set("url", base+"?x=1") }), "app.link_invalid"},
			{"url with an empty query", link(func(v url.Values) { v.Set("url", base+"?") }), "app.link_invalid"},
			{"url with a user", link(func(v url.Values) { v.Set("url", "http://eve@localhost") }), "app.link_invalid"},
			{"url not http", link(func(v url.Values) { v.Set("url", "ftp://localhost") }), "app.link_invalid"},
			{"tls pin on http", link(func(v url.Values) { v.Set("tls", kid) }), "app.link_invalid"},
			{"no code", link(func(v url.Values) { v.Del("code") }), "app.link_invalid"},
			{"code without its secret", link(func(v url.Values) { v.Set("code", "OTZyr3hWxF8KMsW3") }), "app.link_invalid"},
			{"no push key", link(func(v url.Values) { v.Del("pk") }), "app.link_invalid"},
			{"no user", link(func(v url.Values) { v.Del("user") }), "app.link_invalid"},
			{"too long", link(func(v url.Values) { v.Set("user", string(long)) }), "app.link_invalid"},
			{"the native link", "bridge://enroll?" + q.Encode(), "app.link_invalid"},
		} {
			got := evalAsync[string](c, "parse "+tc.name, fmt.Sprintf(`
				const m = await import('/app/enroll.js');
				try { const l = m.parseLink(%q, %q); return l.user === 'alice' && l.url === %q ? 'ok' : 'wrong: ' + JSON.stringify(l); }
				catch (e) { return e instanceof m.LinkError ? e.key : 'error: ' + e; }`, tc.link, base, base))
			if got != tc.want {
				t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
			}
		}
		// Pasted in the app: refused with a message, nothing enrolled.
		c.do("paste a link of another bridge", chromedp.SendKeys(chromedp.CSS("#link"), link(func(v url.Values) { v.Set("url", "https://bridge.example.com") })),
			chromedp.Click(chromedp.CSS("#link-go")))
		c.waitFor("the refusal", `document.getElementById('status').textContent.includes('for another server')`, 10*time.Second)
	})
	c.t = t
	c.check()
}
