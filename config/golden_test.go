package config

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/directory/ldap"
	"github.com/bridge-idp/bridge/directory/local"
	"github.com/bridge-idp/bridge/internal/testenv"
)

// goldenEnv is the environment the golden files are parsed with.
var goldenEnv = map[string]string{
	"BRIDGE_KEK":                 testKEK,
	"BRIDGE_TEST_DSN":            "postgres://bridge@db.example.com/bridge?sslmode=verify-full",
	"LDAP_BIND_PASSWORD":         "corp-secret",
	"BRIDGE_TEST_ISSUER":         "ACME",
	"BRIDGE_TEST_CERT":           "", // set by TestFullConfig
	"BRIDGE_TEST_KEY":            "",
	"BRIDGE_TEST_NOTHING":        "",
	"BRIDGE_TEST_WEBHOOK_SECRET": "webhook-env-secret-0123456789",
	"BRIDGE_TEST_RADIUS_SECRET":  "radius-env-secret-0123456789",
	"BRIDGE_TEST_OIDC_SECRET":    "oidc-env-secret-0123456789abcdef",
	"BRIDGE_TEST_CAPTCHA_SECRET": "0x4AAAAAAAenv-captcha-secret-0123",
}

// wants returns the expected error substrings of a golden bad file: one
// per leading line of the form # want: "substring" (a Go string literal).
func wants(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# want: ")
		if !ok {
			break
		}
		w, err := strconv.Unquote(rest)
		if err != nil {
			t.Fatalf("bad want line %q: %v", sc.Text(), err)
		}
		out = append(out, w)
	}
	return out
}

// TestBadConfigs parses every testdata/bad/*.yaml and checks that it fails
// with the errors its "# want:" lines name.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := wants(t, data)
			if len(want) == 0 {
				t.Fatal(`no "# want:" line`)
			}
			_, err = Parse(data, filepath.Base(file), "testdata/bad", envOf(goldenEnv))
			wantErr(t, err, want...)
		})
	}
}

// TestFullConfig parses a config that sets every key, and compares the
// result field by field, so that no key is decoded into the wrong place.
func TestFullConfig(t *testing.T) {
	tmp := t.TempDir()
	certFile, keyFile := writeCert(t, tmp)
	env := map[string]string{}
	for k, v := range goldenEnv {
		env[k] = v
	}
	env["BRIDGE_TEST_CERT"], env["BRIDGE_TEST_KEY"] = certFile, keyFile

	c, err := Load("testdata/good/full.yaml") // without the environment: must fail
	if err == nil {
		t.Fatalf("Load without environment succeeded: %+v", c)
	}
	data, err := os.ReadFile("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The secret files, private as they should be (git keeps them 0644,
	// which would be warned about).
	good := t.TempDir()
	for _, name := range []string{"kek", "ldap-password", "webhook-secret", "fcm-credentials.json", "admin-api-token", "radius-secret",
		"captcha-secret", "oidc-secret", "oidc-jwks.json", "sp-metadata.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata/good", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, good, name, string(b))
	}
	// The APNs key and CA are made here: no private key is checked in.
	writeAPNsKey(t, good, "AuthKey_ABCDE12345.p8")
	writeFile(t, good, "apns-ca.pem", string(testenv.SelfSigned(t, 2).CertPEM))
	attRoot := testenv.NewCA(t)
	writeFile(t, good, "attestation-roots.pem", "# a bundle may have comments\n"+string(attRoot.CertPEM))
	c, err = Parse(data, "full.yaml", good, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	want := fullConfigWant(t, good, certFile, keyFile)
	want.App.AttestationRootCerts = []*x509.Certificate{attRoot.Cert.Cert}
	if !reflect.DeepEqual(c.File, want) {
		t.Errorf("full config:\n got %+v\nwant %+v", c.File, want)
	}
	if len(c.KEK) != 32 || c.Keys.KEK != testKEK {
		t.Errorf("KEK %x (%q)", c.KEK, c.Keys.KEK)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %q", c.Warnings)
	}

	// Every key of the format is in full.yaml, except those that exclude
	// another one.
	exempt := map[string]bool{
		"keys.kek":                     true, // kek_file is used
		"storage.postgres.dsn_file":    true, // dsn is used
		"http.admin.base_url":          true, // public only
		"http.admin.trusted_proxies[]": true, // public only
		"push.fraud_webhook.secret":    true, // secret_file is used
		"http.admin_api.token":         true, // token_file is used
		"web.captcha.secret":           true, // secret_file is used
	}
	written := map[string]bool{}
	for p := range c.lines {
		written[indexless(p)] = true
	}
	for _, p := range keyPaths(reflect.TypeFor[File](), "") {
		if !written[p] && !exempt[p] {
			t.Errorf("full.yaml does not set %s", p)
		}
	}
}

func fullConfigWant(t *testing.T, dir, certFile, keyFile string) File {
	t.Helper()
	tls := TLS{CertFile: certFile, KeyFile: keyFile}
	var jwks jose.JSONWebKeySet
	if b, err := os.ReadFile("testdata/good/oidc-jwks.json"); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &jwks); err != nil {
		t.Fatal(err)
	}
	spMetadata, err := os.ReadFile("testdata/good/sp-metadata.xml")
	if err != nil {
		t.Fatal(err)
	}
	openldap := &ldap.Config{
		URL:          "ldaps://ldap.example.org",
		BindDN:       "cn=bridge,dc=example,dc=org",
		BindPassword: "corp-secret",
		UserBaseDN:   "ou=people,dc=example,dc=org",
	}
	openldap.ApplyDefaults()
	return File{
		DataDir: "/var/lib/bridge",
		Log:     Log{Level: "debug", Format: "json"},
		Storage: Storage{
			Driver: "postgres",
			SQLite: SQLite{Path: filepath.Join(dir, "bridge.sqlite"), BusyTimeout: 10 * time.Second},
			Postgres: Postgres{
				DSN:      "postgres://bridge@db.example.com/bridge?sslmode=verify-full",
				MaxConns: 20,
			},
			SweepInterval: 2 * time.Minute,
			AuditSpool:    AuditSpool{Path: "/var/lib/bridge/spool/audit", MaxMB: 16},
		},
		Keys: Keys{
			KEK:             testKEK,
			KEKFile:         filepath.Join(dir, "kek"),
			RotationOverlap: 240 * time.Hour,
			RefreshInterval: 30 * time.Second,
			RSABits:         4096,
		},
		HTTP: HTTP{
			Public:            Listener{Listen: "0.0.0.0:8443", BaseURL: "https://mfa.example.com", TLS: tls, TrustedProxies: []string{"10.0.0.0/8", "2001:db8::1"}},
			Admin:             Listener{Listen: "127.0.0.1:9443", TLS: tls},
			AdminAPI:          AdminAPI{Token: "c0ffee0123456789abcdef0123456789abcdef0123456789", TokenFile: filepath.Join(dir, "admin-api-token")},
			ShutdownTimeout:   20 * time.Second,
			DrainDelay:        5 * time.Second,
			ReadHeaderTimeout: 3 * time.Second,
			ReadTimeout:       20 * time.Second,
			WriteTimeout:      90 * time.Second,
			IdleTimeout:       60 * time.Second,
		},
		Passwords: Passwords{Argon2id: local.Argon2{Time: 4, MemoryKiB: 131072, Threads: 4}},
		TOTP:      TOTP{Issuer: "ACME MFA", Algorithm: "SHA256", Digits: 8, Period: time.Minute, Skew: 0},
		Bypass:    Bypass{TTL: 2 * time.Hour, MaxTTL: 24 * time.Hour, Digits: 12},
		Push: Push{
			ChallengeTTL:      90 * time.Second,
			NumberDigits:      3,
			ProofMaxAge:       30 * time.Second,
			LongPoll:          45 * time.Second,
			ActivationTTL:     24 * time.Hour,
			BackoffBase:       10 * time.Second,
			BackoffMax:        30 * time.Minute,
			MaxPerHour:        10,
			MaxPerIPMinute:    60,
			FraudLock:         2 * time.Hour,
			DeliveryTimeout:   15 * time.Second,
			DeliveryWorkers:   64,
			Retention:         48 * time.Hour,
			EnrollPerIPMinute: 5,
			SweepInterval:     10 * time.Second,
			State:             "store",
			FraudWebhook: FraudWebhook{
				URL:        "https://siem.example.com/bridge/fraud",
				Secret:     "webhook-file-secret-0123456789",
				SecretFile: filepath.Join(dir, "webhook-secret"),
				Timeout:    10 * time.Second,
			},
			FCM: FCM{
				CredentialsFile: filepath.Join(dir, "fcm-credentials.json"),
				ProjectID:       "acme-mfa",
				Endpoint:        "https://fcm.example.com/v1",
			},
			APNs: APNs{
				KeyFile:     filepath.Join(dir, "AuthKey_ABCDE12345.p8"),
				KeyID:       "ABCDE12345",
				TeamID:      "TEAM123456",
				Topic:       "com.example.bridge",
				Environment: "sandbox",
				Endpoint:    "https://apns-relay.example.com",
				CAFile:      filepath.Join(dir, "apns-ca.pem"),
			},
		},
		Radius: Radius{
			Listen:           "0.0.0.0:1812",
			AccountingListen: "0.0.0.0:1814",
			ReadBuffer:       8 << 20,
			AnswerCache:      time.Minute,
			MaxPending:       5000,
			Clients: []RadiusClient{
				{
					Name:                 "vpn",
					Address:              "192.0.2.0/24",
					Secret:               "radius-file-secret-0123456789",
					SecretFile:           filepath.Join(dir, "radius-secret"),
					Directory:            "corp",
					MessageAuthenticator: "auto",
					Wait:                 "hold",
					HoldTimeout:          40 * time.Second,
					NumberMatching:       false,
					DeviceKeys:           "hardware",
					SecondFactor:         "push",
					PasswordSuffix:       false,
					Failmode:             "secure",
					FailuresPerUser:      5, FailuresPerIP: 30, FailuresPerClient: 500,
					Reply: RadiusReply{
						Class:          "vpn:{user}:{id}",
						SessionTimeout: 8 * time.Hour,
						Attributes: []RadiusAttribute{
							{Name: "Class", Value: "staff"},
							{Vendor: 3076, Type: 25, Format: "string", Value: "vpn-users"},
						},
						Groups: []RadiusGroupReply{{Group: "vpn-admins", Attributes: []RadiusAttribute{
							{Name: "fortinet-group-name", Value: "admins"},
							{Vendor: 311, Type: 7, Format: "octets", Value: "0x0a0b"},
						}}},
					},
				},
				{
					Name:                 "wifi",
					Address:              "2001:db8::10",
					Secret:               "radius-env-secret-0123456789",
					Directory:            "local",
					MessageAuthenticator: "always",
					Wait:                 "challenge",
					HoldTimeout:          25 * time.Second,
					NumberMatching:       true,
					DeviceKeys:           "hardware",
					SecondFactor:         "push",
					PasswordSuffix:       true,
					Failmode:             "secure",
					Reply:                RadiusReply{Class: "bridge:{id}"},
					FailuresPerUser:      10, FailuresPerIP: 20, FailuresPerClient: 100,
				},
			},
		},
		Web: Web{
			SessionLifetime: 4 * time.Hour,
			LoginTimeout:    15 * time.Minute,
			FailuresPerIP:   50,
			FailuresPerUser: 5,
			Captcha: Captcha{
				Provider:      "turnstile",
				SiteKey:       "0x4AAAAAAABkMYinukE8nzY",
				Secret:        "0x4AAAAAAAfile-captcha-secret-0123",
				SecretFile:    filepath.Join(dir, "captcha-secret"),
				VerifyURL:     "https://captcha-relay.example.com/turnstile/siteverify",
				ScriptURL:     "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit",
				AfterFailures: 3,
				Timeout:       10 * time.Second,
			},
		},
		OIDC: OIDC{
			SigningAlgorithm:     "RS256",
			CodeLifetime:         30 * time.Second,
			AccessTokenLifetime:  5 * time.Minute,
			IDTokenLifetime:      15 * time.Minute,
			RefreshTokenLifetime: 24 * time.Hour,
			Clients: []OIDCClient{
				{
					ID:                     "wiki",
					Name:                   "Company Wiki",
					Secret:                 "oidc-file-secret-0123456789abcdef",
					SecretFile:             filepath.Join(dir, "oidc-secret"),
					AuthMethod:             "client_secret_post",
					RedirectURIs:           []string{"https://wiki.example.com/redirect_uri"},
					PostLogoutRedirectURIs: []string{"https://wiki.example.com/"},
					Directory:              "corp",
					NumberMatching:         true,
					DeviceKeys:             "hardware",
					SessionReuse:           false,
					Captcha:                true,
					Scopes:                 []string{"openid", "profile", "email", "groups"},
					SigningAlgorithm:       "ES256",
				},
				{
					ID:               "portal.example_2",
					Name:             "portal.example_2",
					Secret:           "oidc-env-secret-0123456789abcdef",
					AuthMethod:       "client_secret_basic",
					RedirectURIs:     []string{"https://portal.example.com/oidc/callback"},
					Directory:        "local",
					NumberMatching:   true,
					DeviceKeys:       DeviceKeysAny,
					SessionReuse:     true,
					Scopes:           []string{"openid", "profile", "email", "groups", "offline_access"},
					SigningAlgorithm: "RS256",
				},
				{
					ID:               "reports",
					Name:             "reports",
					AuthMethod:       "private_key_jwt",
					JWKSFile:         filepath.Join(dir, "oidc-jwks.json"),
					JWKS:             jwks,
					RedirectURIs:     []string{"https://reports.example.com/callback"},
					Directory:        "local",
					NumberMatching:   true,
					DeviceKeys:       DeviceKeysAny,
					SessionReuse:     true,
					Scopes:           []string{"openid", "profile", "email", "groups", "offline_access"},
					SigningAlgorithm: "EdDSA",
				},
				{
					ID:               "cli",
					Name:             "cli",
					AuthMethod:       "none",
					RedirectURIs:     []string{"http://127.0.0.1:8400/callback", "com.example.cli:/callback"},
					Directory:        "local",
					NumberMatching:   true,
					DeviceKeys:       DeviceKeysAny,
					SessionReuse:     true,
					Scopes:           []string{"openid", "profile", "email", "groups", "offline_access"},
					SigningAlgorithm: "RS256",
				},
			},
		},
		SAML: SAML{
			AssertionLifetime:  10 * time.Minute,
			ClockSkew:          2 * time.Minute,
			SignatureAlgorithm: "rsa-sha512",
			ServiceProviders: []SAMLServiceProvider{
				{
					Name:                  "helpdesk",
					DisplayName:           "Help Desk",
					MetadataFile:          filepath.Join(dir, "sp-metadata.xml"),
					Metadata:              spMetadata,
					Directory:             "corp",
					NumberMatching:        true,
					DeviceKeys:            "hardware",
					SessionReuse:          false,
					NameIDFormat:          "emailAddress",
					SignResponse:          false,
					SignAssertion:         true,
					EncryptAssertion:      true,
					RequireSignedRequests: true,
					AllowIDPInitiated:     true,
					AssertionLifetime:     2 * time.Minute,
					Attributes: []SAMLAttribute{
						{Name: "urn:oid:0.9.2342.19200300.100.1.3", From: "email", NameFormat: "uri"},
						{Name: "memberOf", From: "groups", NameFormat: "unspecified"},
						{Name: "department", From: "value", Value: "IT", NameFormat: "basic"},
					},
				},
				{
					Name:              "crm",
					DisplayName:       "crm",
					MetadataURL:       "https://crm.example.com/saml/metadata",
					MetadataRefresh:   6 * time.Hour,
					Directory:         "local",
					NumberMatching:    true,
					DeviceKeys:        DeviceKeysAny,
					SessionReuse:      true,
					NameIDFormat:      "persistent",
					SignResponse:      true,
					SignAssertion:     true,
					AssertionLifetime: 10 * time.Minute,
					Attributes:        defaultSAMLAttributes(),
				},
			},
		},
		App: App{
			Enabled: true, Name: "Example Corp sign-in", RPID: "example.com", Origins: []string{"https://mfa2.example.com"},
			SelfEnrollment:   false,
			WebPush:          WebPush{Enabled: true, Subject: "mailto:security@example.com", AllowedHosts: []string{"fcm.googleapis.com", "*.push.apple.com"}},
			AttestationRoots: []string{filepath.Join(dir, "attestation-roots.pem")},
		},
		Directory: []Directory{
			{Name: "local", Type: "local"},
			{Name: "corp", Type: "ldap", LDAP: &ldap.Config{
				Preset:         "active_directory",
				URL:            "ldap://dc1.corp.example.com:389",
				StartTLS:       true,
				CAFile:         filepath.Join(dir, "corp-ca.pem"),
				ServerName:     "dc1.corp.example.com",
				BindDN:         "CN=svc-bridge,OU=Service,DC=corp,DC=example,DC=com",
				BindPassword:   "corp-file-secret",
				UserBaseDN:     "OU=Staff,DC=corp,DC=example,DC=com",
				UserFilter:     "(&(objectClass=user)(userPrincipalName={username}))",
				DisabledFilter: "(userAccountControl:1.2.840.113556.1.4.803:=2)",
				Attributes:     ldap.Attributes{Username: "userPrincipalName", DisplayName: "displayName", Email: "mail"},
				Groups: ldap.Groups{
					Mode:          "search",
					Attribute:     "memberOf",
					BaseDN:        "OU=Groups,DC=corp,DC=example,DC=com",
					Filter:        "(&(objectClass=group)(member={dn}))",
					NameAttribute: "cn",
				},
				Timeout:        3 * time.Second,
				PoolSize:       2,
				MaxConnections: 8,
			}},
			{Name: "openldap", Type: "ldap", LDAP: openldap},
			{Name: "push", Type: "none", Identities: "corp"},
		},
	}
}

// indexless turns directories[3].ldap into directories[].ldap.
func indexless(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
			b.WriteString("[]")
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// keyPaths lists every leaf key path of the format, with [] for lists.
func keyPaths(t reflect.Type, prefix string) []string {
	var out []string
	f := fieldsOf(t)
	for _, name := range f.names {
		ft := t.Field(f.index[name]).Type
		p := joinPath(prefix, name)
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
			if ft.Kind() == reflect.Slice {
				p += "[]"
			}
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != durationType {
			out = append(out, keyPaths(ft, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}
