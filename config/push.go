package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// The APNs endpoints of push.apns.environment.
const (
	apnsProduction = "https://api.push.apple.com"
	apnsSandbox    = "https://api.sandbox.push.apple.com"
)

// PushState is where open push challenges live, with push.state auto
// resolved: "memory" (this node only) or "store" (the storage backend,
// shared by every node).
func (f *File) PushState() string {
	if f.Push.State == "auto" || f.Push.State == "" {
		if f.Storage.Driver == "postgres" {
			return "store"
		}
		return "memory"
	}
	return f.Push.State
}

// Enabled reports whether fraud reports are posted to a webhook.
func (w FraudWebhook) Enabled() bool { return w.URL != "" }

// Enabled reports whether FCM is configured.
func (f FCM) Enabled() bool { return f.CredentialsFile != "" }

// Enabled reports whether APNs is configured.
func (a APNs) Enabled() bool { return a.KeyFile != "" }

// URL is the APNs endpoint to send to: endpoint if set, else that of
// environment (https://api.push.apple.com or
// https://api.sandbox.push.apple.com).
func (a APNs) URL() string {
	switch {
	case a.Endpoint != "":
		return a.Endpoint
	case a.Environment == "sandbox":
		return apnsSandbox
	}
	return apnsProduction
}

// pushKeyFiles lists the private key files of the push section, for the
// warning about files that other users can read.
func (f *File) pushKeyFiles() []secretFile {
	var out []secretFile
	if k := f.Push.FCM.CredentialsFile; k != "" {
		out = append(out, secretFile{path: "push.fcm.credentials_file", file: k})
	}
	if k := f.Push.APNs.KeyFile; k != "" {
		out = append(out, secretFile{path: "push.apns.key_file", file: k})
	}
	return out
}

// minWebhookSecret is the shortest fraud webhook secret accepted, in bytes.
const minWebhookSecret = 16

// push checks the push section.
func (v *validator) push() {
	p := &v.c.Push
	v.durationIn("push.challenge_ttl", p.ChallengeTTL, 10*time.Second, 5*time.Minute)
	v.intIn("push.number_digits", p.NumberDigits, 2, 8)
	v.durationIn("push.proof_max_age", p.ProofMaxAge, 5*time.Second, 10*time.Minute)
	v.durationIn("push.long_poll", p.LongPoll, time.Second, 5*time.Minute)
	v.durationIn("push.activation_ttl", p.ActivationTTL, time.Minute, 7*24*time.Hour)
	v.positive("push.backoff_base", p.BackoffBase)
	v.positive("push.backoff_max", p.BackoffMax)
	if p.BackoffBase > 0 && p.BackoffMax > 0 && p.BackoffMax < p.BackoffBase {
		v.errorf("push.backoff_max", "%s is shorter than backoff_base (%s)",
			v.c.plain("push.backoff_max", p.BackoffMax), v.c.plain("push.backoff_base", p.BackoffBase))
	}
	v.atLeast("push.max_per_hour", p.MaxPerHour, 1)
	v.atLeast("push.max_per_ip_minute", p.MaxPerIPMinute, 1)
	if p.FraudLock < 0 {
		v.errorf("push.fraud_lock", "must not be negative, got %s (0 means a fraud report does not lock)",
			v.c.plain("push.fraud_lock", p.FraudLock))
	}
	v.durationIn("push.delivery_timeout", p.DeliveryTimeout, time.Second, 2*time.Minute)
	v.intIn("push.delivery_workers", p.DeliveryWorkers, 1, 1024)
	if p.Retention < time.Hour {
		v.errorf("push.retention", "must be at least 1h, got %s", v.c.plain("push.retention", p.Retention))
	}
	v.atLeast("push.enroll_per_ip_minute", p.EnrollPerIPMinute, 1)
	v.durationIn("push.sweep_interval", p.SweepInterval, time.Second, time.Minute)
	v.oneOf("push.state", p.State, "auto", "memory", "store")

	v.fraudWebhook(&p.FraudWebhook)
	v.fcm(&p.FCM)
	v.apns(&p.APNs)
}

func (v *validator) fraudWebhook(w *FraudWebhook) {
	const path = "push.fraud_webhook"
	if w.URL != "" {
		if err := checkWebhookURL(w.URL, v.c.fromEnv[path+".url"]); err != nil {
			v.errorf(path+".url", "%v", err)
		}
	} else if w.Secret != "" || w.SecretFile != "" || v.c.has(path+".timeout") {
		v.errorf(path+".url", "is empty, which disables the fraud webhook: set it, or remove the other %s keys", path)
	}
	// An unreadable or empty secret_file, or both keys set, was reported
	// when it was read.
	both := v.c.has(path+".secret") && v.c.has(path+".secret_file")
	if w.Secret != "" && len(w.Secret) < minWebhookSecret && !both {
		key := path + ".secret"
		if w.SecretFile != "" {
			key = path + ".secret_file"
		}
		v.errorf(key, "the secret must be at least %d bytes: make one with `openssl rand -hex 32`", minWebhookSecret)
	}
	v.durationIn(path+".timeout", w.Timeout, time.Second, time.Minute)
}

// checkWebhookURL requires an absolute http(s) URL with a host and without
// a fragment. A value from the environment (env.raw set) is named by its
// variables in the error.
func checkWebhookURL(s string, env envUse) error {
	shown := quote(s)
	if env.raw != "" {
		shown = envRef(env.raw)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL such as https://siem.example.com/bridge, got %s", shown)
	}
	if u.Fragment != "" {
		return fmt.Errorf("must not have a fragment (#...), got %s", shown)
	}
	return nil
}

// fcmProjectID is a Google Cloud project id, possibly with a legacy domain
// prefix ("example.com:project").
var fcmProjectID = regexp.MustCompile(`^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)

// serviceAccount is what the config checks of an FCM credentials file.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
}

func (v *validator) fcm(f *FCM) {
	const path = "push.fcm"
	if f.ProjectID != "" && !fcmProjectID.MatchString(f.ProjectID) {
		v.errorf(path+".project_id", "%s is not a Google Cloud project id (lower-case letters, digits and -, as the Firebase console shows it)",
			v.c.show(path+".project_id", f.ProjectID))
	}
	if f.Endpoint != "" {
		if err := checkFCMEndpoint(f.Endpoint, v.c.fromEnv[path+".endpoint"]); err != nil {
			v.errorf(path+".endpoint", "%v", err)
		}
	}
	if f.CredentialsFile == "" {
		if f.ProjectID != "" || f.Endpoint != "" {
			v.errorf(path+".credentials_file", "is empty, which disables FCM: set it, or remove the other %s keys", path)
		}
		return
	}
	key := path + ".credentials_file"
	b, err := v.read(f.CredentialsFile)
	if err != nil {
		v.errorf(key, "cannot read %s: %v", v.c.showFile(key, f.CredentialsFile), fileError(err))
		return
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		v.errorf(key, "%s is not a JSON service-account key (download one from the Firebase console: "+
			"Project settings, Service accounts)", v.c.showFile(key, f.CredentialsFile))
		return
	}
	if sa.Type != "service_account" {
		v.errorf(key, "%s is not a service-account key: its type is %s, want \"service_account\"",
			v.c.showFile(key, f.CredentialsFile), quote(sa.Type))
		return
	}
	var missing []string
	if sa.ClientEmail == "" {
		missing = append(missing, "client_email")
	}
	if sa.PrivateKey == "" {
		missing = append(missing, "private_key")
	}
	if len(missing) > 0 {
		v.errorf(key, "%s has no %s", v.c.showFile(key, f.CredentialsFile), strings.Join(missing, " and no "))
	}
	if f.ProjectID == "" && sa.ProjectID == "" {
		v.errorf(path+".project_id", "required: the credentials file %s has no project_id", v.c.showFile(key, f.CredentialsFile))
	}
}

// appleID is the form of an APNs key id and of a team id.
var appleID = regexp.MustCompile(`^[A-Z0-9]{10}$`)

// bundleID is the form of an iOS bundle id, the APNs topic.
var bundleID = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$`)

func (v *validator) apns(a *APNs) {
	const path = "push.apns"
	for _, id := range []struct{ key, value, what string }{
		{"key_id", a.KeyID, "key's"},
		{"team_id", a.TeamID, "developer team's"},
	} {
		p := path + "." + id.key
		switch {
		case id.value == "" && a.KeyFile != "":
			v.errorf(p, "required with key_file: the %s 10-character id, as Apple's developer site shows it", id.what)
		case id.value != "" && !appleID.MatchString(id.value):
			v.errorf(p, "%s is not the %s 10-character id (capital letters and digits, as Apple's developer site shows it)",
				v.c.show(p, id.value), id.what)
		}
	}
	switch p := path + ".topic"; {
	case a.Topic == "" && a.KeyFile != "":
		v.errorf(p, "required with key_file: the app's bundle id, such as com.example.bridge")
	case a.Topic != "" && (len(a.Topic) > 255 || !bundleID.MatchString(a.Topic)):
		v.errorf(p, "%s is not a bundle id (letters, digits, - and ., such as com.example.bridge)", v.c.show(p, a.Topic))
	}
	v.oneOf(path+".environment", a.Environment, "production", "sandbox")
	if a.Endpoint != "" {
		if err := checkAPNsEndpoint(a.Endpoint, v.c.fromEnv[path+".endpoint"]); err != nil {
			v.errorf(path+".endpoint", "%v", err)
		}
	}
	if a.CAFile != "" {
		p := path + ".ca_file"
		if b, err := v.read(a.CAFile); err != nil {
			v.errorf(p, "cannot read %s: %v", v.c.showFile(p, a.CAFile), fileError(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.errorf(p, "%s holds no PEM certificate", v.c.showFile(p, a.CAFile))
		}
	}
	if a.KeyFile == "" {
		if a.KeyID != "" || a.TeamID != "" || a.Topic != "" || a.Endpoint != "" || a.CAFile != "" || a.Environment == "sandbox" {
			v.errorf(path+".key_file", "is empty, which disables APNs: set it, or remove the other %s keys", path)
		}
		return
	}
	p := path + ".key_file"
	b, err := v.read(a.KeyFile)
	if err != nil {
		v.errorf(p, "cannot read %s: %v", v.c.showFile(p, a.KeyFile), fileError(err))
		return
	}
	if err := checkAPNsKey(b); err != nil {
		v.errorf(p, "%s: %v", v.c.showFile(p, a.KeyFile), err)
	}
}

// checkAPNsKey checks that b is an APNs auth key as Apple issues it: PEM
// "PRIVATE KEY", PKCS#8, EC P-256. Its errors never quote the key.
func checkAPNsKey(b []byte) error {
	const want = `want the .p8 file from Apple (PEM "PRIVATE KEY", an EC P-256 key)`
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return fmt.Errorf("not an APNs auth key: %s", want)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("cannot parse the key: %s", want)
	}
	if key, ok := k.(*ecdsa.PrivateKey); !ok || key.Curve != elliptic.P256() {
		return fmt.Errorf("holds %s, %s", keyKind(k), want)
	}
	return nil
}

// keyKind names the type of a parsed private key for a message.
func keyKind(k any) string {
	switch key := k.(type) {
	case *ecdsa.PrivateKey:
		return "an EC " + key.Curve.Params().Name + " key"
	case *rsa.PrivateKey:
		return "an RSA key"
	case ed25519.PrivateKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T", k)
}

// checkFCMEndpoint requires an absolute https:// URL (such as
// https://fcm.googleapis.com/v1), or http:// to a loopback host (for
// tests), without credentials, a query or a fragment.
func checkFCMEndpoint(s string, env envUse) error {
	u, shown, err := parseEndpoint(s, env)
	if err != nil {
		return err
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return fmt.Errorf("http:// is only allowed to a loopback host (for tests); use https://, got %s", shown)
	}
	return nil
}

// checkAPNsEndpoint requires an https:// base URL (such as
// https://api.push.apple.com): scheme, host and port only.
func checkAPNsEndpoint(s string, env envUse) error {
	u, shown, err := parseEndpoint(s, env)
	if err != nil {
		return err
	}
	if u.Scheme != "https" {
		return fmt.Errorf("must be https://, got %s", shown)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("must be a base URL without a path, such as %s, got %s", apnsProduction, shown)
	}
	return nil
}

// parseEndpoint parses an absolute http(s) URL with a host and without
// credentials, a query or a fragment. shown names it in messages: quoted,
// or by its variables when it came from the environment (env.raw set).
func parseEndpoint(s string, env envUse) (u *url.URL, shown string, err error) {
	shown = quote(s)
	if env.raw != "" {
		shown = envRef(env.raw)
	}
	u, err = url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, shown, fmt.Errorf("must be an absolute https:// URL, got %s", shown)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, shown, fmt.Errorf("must not have credentials, a query or a fragment, got %s", shown)
	}
	return u, shown, nil
}

// durationIn checks a duration against inclusive bounds.
func (v *validator) durationIn(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.errorf(path, "must be from %s to %s, got %s", shortDuration(lo), shortDuration(hi), v.c.plain(path, d))
	}
}

// intIn checks an integer against inclusive bounds.
func (v *validator) intIn(path string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errorf(path, "must be from %d to %d, got %s", lo, hi, v.c.plain(path, n))
	}
}

// atLeast checks an integer's lower bound.
func (v *validator) atLeast(path string, n, lo int) {
	if n < lo {
		v.errorf(path, "must be at least %d, got %s", lo, v.c.plain(path, n))
	}
}

// shortDuration writes a round duration as it is written in the file:
// 5m rather than 5m0s, 168h rather than 168h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
