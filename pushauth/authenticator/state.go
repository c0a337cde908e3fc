package authenticator

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// stateVersion is the version of the state file format.
const stateVersion = 1

// state is the JSON state file. It holds the private key: mode 0600.
type state struct {
	Version       int                `json:"version"`
	Server        string             `json:"server"`
	DeviceID      string             `json:"device_id"`
	User          string             `json:"user"`
	Algorithm     string             `json:"algorithm"`
	PrivateKey    string             `json:"private_key"`     // PKCS#8 DER, base64
	PinnedPushKey string             `json:"pinned_push_key"` // thumbprint
	PushKeys      jose.JSONWebKeySet `json:"push_keys"`       // trusted, kid = thumbprint
	TLSPin        string             `json:"tls_pin,omitempty"`
	CACerts       string             `json:"ca_certs,omitempty"` // PEM
	PushProvider  string             `json:"push_provider,omitempty"`
	PushToken     string             `json:"push_token,omitempty"`
	EnrolledAt    time.Time          `json:"enrolled_at"`
}

// ErrStatePermissions: the state file can be read or written by users
// other than its owner.
var ErrStatePermissions = errors.New("authenticator: the state file is accessible by group or others")

// maxState bounds the state file.
const maxState = 1 << 20

// Save writes the device, its private key included, to path: to a
// temporary file in the same directory (mode 0600), renamed over path. A
// missing parent directory is made with mode 0700; an existing one is left
// as it is.
func (d *Device) Save(path string) error {
	der, err := x509.MarshalPKCS8PrivateKey(d.key)
	if err != nil {
		return fmt.Errorf("authenticator: encoding the device key: %w", err)
	}
	d.mu.Lock()
	st := state{
		Version:       stateVersion,
		Server:        d.base,
		DeviceID:      d.id,
		User:          d.user,
		Algorithm:     d.alg,
		PrivateKey:    base64.StdEncoding.EncodeToString(der),
		PinnedPushKey: d.pinned,
		TLSPin:        d.tlsPin,
		CACerts:       string(d.caPEM),
		PushProvider:  d.pushProvider,
		PushToken:     d.pushToken,
		EnrolledAt:    d.enrolled.UTC(),
	}
	d.mu.Unlock()
	for _, tp := range d.PushKeys() {
		k, _ := d.trustedKey(tp)
		st.PushKeys.Keys = append(st.PushKeys.Keys, k)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("authenticator: encoding the state: %w", err)
	}
	data = append(data, '\n')

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("authenticator: saving the state: %w", err)
	}
	return nil
}

// Option changes how a loaded device talks to the bridge.
type Option func(*loadOptions)

type loadOptions struct {
	client *http.Client
	now    func() time.Time
}

// WithHTTPClient makes the device copy client for its requests (see
// EnrollOptions.HTTPClient).
func WithHTTPClient(client *http.Client) Option {
	return func(o *loadOptions) { o.client = client }
}

// WithClock sets the device's clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(o *loadOptions) { o.now = now }
}

// Load reads a device saved by Save. It refuses a state file that group or
// others can access (ErrStatePermissions): it holds the private key. A
// missing file is an error wrapping os.ErrNotExist.
func Load(path string, opts ...Option) (*Device, error) {
	o := loadOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("authenticator: state file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o, but it holds the device's private key; make it private with: chmod 600 %s", ErrStatePermissions, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxState+1))
	if err != nil {
		return nil, fmt.Errorf("authenticator: reading %s: %w", path, err)
	}
	if len(data) > maxState {
		return nil, fmt.Errorf("authenticator: state file %s is larger than %d bytes", path, maxState)
	}
	var st state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("authenticator: state file %s: %w", path, err)
	}
	d, err := st.device(o)
	if err != nil {
		return nil, fmt.Errorf("authenticator: state file %s: %w", path, err)
	}
	return d, nil
}

// device checks the state and makes the device, reporting every problem.
func (st state) device(o loadOptions) (*Device, error) {
	var errs []error
	if st.Version != stateVersion {
		return nil, fmt.Errorf("version %d is not supported (want %d)", st.Version, stateVersion)
	}
	if u, err := url.Parse(st.Server); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("server %q is not an http(s) URL", st.Server))
	}
	if st.DeviceID == "" || st.User == "" {
		errs = append(errs, errors.New("device_id and user are required"))
	}
	var (
		key    any
		signer crypto.Signer
		alg    string
	)
	der, err := base64.StdEncoding.DecodeString(st.PrivateKey)
	if err == nil {
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("private_key: %w", err))
	} else if signer, alg, err = keyAlgorithm(key); err != nil {
		errs = append(errs, fmt.Errorf("private_key: %w", err))
	} else if alg != st.Algorithm {
		errs = append(errs, fmt.Errorf("algorithm %q does not match the %s private key", st.Algorithm, alg))
	}
	trusted := map[string]jose.JSONWebKey{}
	for i, k := range st.PushKeys.Keys {
		pk, err := pushKey(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("push_keys[%d]: %w", i, err))
			continue
		}
		if k.KeyID != pk.KeyID {
			errs = append(errs, fmt.Errorf("push_keys[%d]: kid %q is not the key's thumbprint", i, k.KeyID))
			continue
		}
		trusted[pk.KeyID] = pk
	}
	if _, ok := trusted[st.PinnedPushKey]; !ok {
		errs = append(errs, errors.New("the pinned push key is not among push_keys"))
	}
	if err := checkPush(st.PushProvider, st.PushToken); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	client, err := httpClient(o.client, st.TLSPin, []byte(st.CACerts))
	if err != nil {
		return nil, err
	}
	d := &Device{
		base:         st.Server,
		id:           st.DeviceID,
		user:         st.User,
		alg:          alg,
		key:          signer,
		pinned:       st.PinnedPushKey,
		tlsPin:       st.TLSPin,
		enrolled:     st.EnrolledAt,
		client:       client,
		now:          o.now,
		trusted:      trusted,
		pushProvider: st.PushProvider,
		pushToken:    st.PushToken,
	}
	if st.CACerts != "" {
		d.caPEM = []byte(st.CACerts)
	}
	return d, nil
}
