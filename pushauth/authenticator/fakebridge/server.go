package fakebridge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// Config configures a fake bridge.
type Config struct {
	// TLS serves https (httptest's certificate; Client trusts it) and puts
	// the certificate's pin in activation URLs.
	TLS bool
	// Now is the server's clock (default time.Now).
	Now func() time.Time
}

// Device is an enrolled device as the fake knows it.
type Device struct {
	ID     string
	User   string
	Alg    string
	Key    jose.JSONWebKey
	Enroll protocol.EnrollClaims
}

// Answer is an answer the fake accepted for checking (it may still have
// been refused afterwards, for example as already answered).
type Answer struct {
	DeviceID string
	JWS      string
	Claims   protocol.AnswerClaims
}

type challenge struct {
	id, user, signed, state, number string
	expires                         time.Time
}

// Server is a fake bridge listening on 127.0.0.1.
type Server struct {
	// URL is the bridge's public base URL (no trailing slash).
	URL string

	t       testing.TB
	hs      *httptest.Server
	now     func() time.Time
	tls     bool
	closing chan struct{}

	mu           sync.Mutex
	keys         []ed25519.PrivateKey // published push keys
	signer       int                  // index in keys of the key that signs
	endorsements []string
	codes        map[string]string // activation code -> user
	devices      map[string]*Device
	deviceOrder  []string
	challenges   map[string]*challenge
	order        []string // challenge ids, oldest first
	jtis         map[string]bool
	proofs       []protocol.ProofClaims
	answers      []Answer
	updates      []protocol.DeviceUpdate
	pushKeyGets  int
	polls        int           // long-polls that have waited
	pendingGets  int           // requests for the pending list
	changed      chan struct{} // closed and replaced on every change
}

// Start starts a fake bridge, closed by t.Cleanup.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := &Server{
		t:          t,
		now:        cfg.Now,
		tls:        cfg.TLS,
		closing:    make(chan struct{}),
		codes:      map[string]string{},
		devices:    map[string]*Device{},
		challenges: map[string]*challenge{},
		jtis:       map[string]bool{},
		changed:    make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.keys = []ed25519.PrivateKey{newPushKey(t)}

	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathEnroll, s.enroll)
	mux.HandleFunc("GET "+protocol.PathPending, s.withDevice(s.pending))
	mux.HandleFunc("GET "+protocol.PathChallenge+"{id}", s.withDevice(s.fetch))
	mux.HandleFunc("POST "+protocol.PathChallenge+"{id}"+protocol.SuffixAnswer, s.withDevice(s.answer))
	mux.HandleFunc("PUT "+protocol.PathDevice, s.withDevice(s.update))
	mux.HandleFunc("GET "+protocol.PathPushKeys, s.withDevice(s.pushKeys))

	hs := httptest.NewUnstartedServer(mux)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakebridge: %v", err)
	}
	hs.Listener.Close()
	hs.Listener = ln
	if cfg.TLS {
		hs.StartTLS()
	} else {
		hs.Start()
	}
	s.hs, s.URL = hs, hs.URL
	t.Cleanup(func() {
		close(s.closing)
		hs.Close()
	})
	return s
}

func newPushKey(t testing.TB) ed25519.PrivateKey {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("fakebridge: %v", err)
	}
	return key
}

// Client is an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// Certificate is the server's TLS certificate (nil without TLS).
func (s *Server) Certificate() *x509.Certificate { return s.hs.Certificate() }

// Activation makes a one-time activation for user, pinning the current
// push key (and, with TLS, the certificate's key).
func (s *Server) Activation(user string) protocol.Activation {
	s.mu.Lock()
	defer s.mu.Unlock()
	code := "act_" + randomHex(4) + "." + randomHex(16)
	s.codes[code] = user
	a := protocol.Activation{BaseURL: s.URL, Code: code, PushKey: kidOf(s.keys[s.signer])}
	if s.tls {
		a.TLSPin = protocol.SPKIPin(s.hs.Certificate().RawSubjectPublicKeyInfo)
	}
	return a
}

// PushKey is the push key that signs challenges now, and its kid.
func (s *Server) PushKey() (ed25519.PrivateKey, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[s.signer]
	return k, kidOf(k)
}

// RotatePushKey publishes a new push key, which signs challenges from now
// on, endorsed by the previous one if endorse. It returns the new kid.
func (s *Server) RotatePushKey(endorse bool) string {
	key := newPushKey(s.t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if endorse {
		old := s.keys[s.signer]
		e, err := protocol.Sign(protocol.AlgEdDSA, old, protocol.TypEndorsement, kidOf(old), false,
			protocol.EndorsementClaims{Key: publicJWK(key), IssuedAt: s.now().Unix()})
		if err != nil {
			s.t.Fatalf("fakebridge: %v", err)
		}
		s.endorsements = append(s.endorsements, e)
	}
	s.keys = append(s.keys, key)
	s.signer = len(s.keys) - 1
	return kidOf(key)
}

// AddEndorsement publishes an endorsement as it is (for tests of bad ones).
func (s *Server) AddEndorsement(jws string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endorsements = append(s.endorsements, jws)
}

// ChallengeClaims are valid claims of a new challenge for user, not yet
// signed or added: tests change them, then SignChallenge and AddChallenge.
func (s *Server) ChallengeClaims(user string) protocol.ChallengeClaims {
	now := s.now()
	return protocol.ChallengeClaims{
		Issuer:    s.URL,
		ID:        "ch_" + randomHex(16),
		User:      user,
		AppID:     "vpn",
		AppName:   "Corporate VPN",
		Channel:   "radius",
		ClientIP:  "203.0.113.7",
		UserAgent: "OpenConnect/9.12",
		Location:  "Paris, FR",
		IssuedAt:  now.Unix(),
		Expires:   now.Add(90 * time.Second).Unix(),
	}
}

// SignChallenge signs claims with the current push key.
func (s *Server) SignChallenge(claims protocol.ChallengeClaims) string {
	key, kid := s.PushKey()
	jws, err := protocol.Sign(protocol.AlgEdDSA, key, protocol.TypChallenge, kid, false, claims)
	if err != nil {
		s.t.Fatalf("fakebridge: %v", err)
	}
	return jws
}

// AddChallenge makes signed (any JWS, forged or not) a pending challenge
// with this id for user; number, if not empty, is what approving needs.
func (s *Server) AddChallenge(id, user, signed, number string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.challenges[id] = &challenge{id: id, user: user, signed: signed, state: "pending", number: number,
		expires: s.now().Add(90 * time.Second)}
	s.order = append(s.order, id)
	s.changedLocked()
}

// NewChallenge adds a valid pending challenge for user, with number
// matching if number is not empty, and returns its id.
func (s *Server) NewChallenge(user, number string) string {
	c := s.ChallengeClaims(user)
	c.NumberDigits = len(number)
	s.AddChallenge(c.ID, user, s.SignChallenge(c), number)
	return c.ID
}

// CloseChallenge closes a challenge with state (as if answered elsewhere).
func (s *Server) CloseChallenge(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.challenges[id]; c != nil {
		c.state = state
		s.changedLocked()
	}
}

// State is a challenge's state ("" if there is none).
func (s *Server) State(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.challenges[id]; c != nil {
		return c.state
	}
	return ""
}

// Devices lists the enrolled devices, oldest first.
func (s *Server) Devices() []Device {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Device
	for _, id := range s.deviceOrder {
		out = append(out, *s.devices[id])
	}
	return out
}

// Answers lists the answers that passed the signature check, in order.
func (s *Server) Answers() []Answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.answers)
}

// Proofs lists the proofs of the requests that passed the proof check.
func (s *Server) Proofs() []protocol.ProofClaims {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.proofs)
}

// Updates lists the device updates received.
func (s *Server) Updates() []protocol.DeviceUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// PushKeyRequests counts the GETs of the push keys.
func (s *Server) PushKeyRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushKeyGets
}

// WaitPolls waits until n long-polls in all have found nothing pending and
// started waiting.
func (s *Server) WaitPolls(ctx context.Context, n int) error {
	return s.waitCount(ctx, n, "long-poll(s) waited", func() int { return s.polls })
}

// PendingRequests counts the requests for the pending list so far.
func (s *Server) PendingRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingGets
}

// WaitPendingRequests waits until n requests for the pending list in all
// have been answered (or have started waiting).
func (s *Server) WaitPendingRequests(ctx context.Context, n int) error {
	return s.waitCount(ctx, n, "pending-list request(s)", func() int { return s.pendingGets })
}

// waitCount waits until count() (read under s.mu) reaches n.
func (s *Server) waitCount(ctx context.Context, n int, what string, count func() int) error {
	for {
		s.mu.Lock()
		got, changed := count(), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("fakebridge: %d %s, want %d: %w", got, what, n, ctx.Err())
		}
	}
}

func (s *Server) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ---- handlers

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, protocol.Error{Code: code, Description: fmt.Sprintf(format, args...)})
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "body: %v", err)
		return nil, false
	}
	return body, true
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/jose" {
		writeError(w, http.StatusUnsupportedMediaType, protocol.ErrInvalidRequest, "content type %q, want application/jose", ct)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	p, err := protocol.Parse(string(body), protocol.TypEnroll, protocol.DeviceAlgorithms())
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "%v", err)
		return
	}
	jwk := p.Header.JSONWebKey
	if jwk == nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "no jwk header")
		return
	}
	alg, err := protocol.DeviceKey(*jwk)
	if err == nil && p.Header.Algorithm != alg {
		err = fmt.Errorf("alg %s for a %s key", p.Header.Algorithm, alg)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "%v", err)
		return
	}
	var claims protocol.EnrollClaims
	if err := p.Verify(*jwk, &claims); err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "%v", err)
		return
	}
	if claims.URL != s.URL+protocol.PathEnroll || !s.fresh(claims.IssuedAt) {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "htu %q or iat %d", claims.URL, claims.IssuedAt)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.codes[claims.Activation]
	if !ok {
		writeError(w, http.StatusForbidden, protocol.ErrInvalidCode, "unknown or used activation code")
		return
	}
	delete(s.codes, claims.Activation)
	id := "dev_" + randomHex(8)
	key := *jwk
	key.KeyID = id
	s.devices[id] = &Device{ID: id, User: user, Alg: alg, Key: key, Enroll: claims}
	s.deviceOrder = append(s.deviceOrder, id)
	resp := protocol.EnrollResponse{DeviceID: id, User: user, Endorsements: slices.Clone(s.endorsements)}
	resp.PushKeys = s.publishedLocked()
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) publishedLocked() jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range s.keys {
		set.Keys = append(set.Keys, publicJWK(k))
	}
	return set
}

// fresh says whether iat is within a minute of now.
func (s *Server) fresh(iat int64) bool {
	d := s.now().Sub(time.Unix(iat, 0))
	return d < time.Minute && d > -time.Minute
}

// withDevice checks the request's proof and passes on the device.
func (s *Server) withDevice(h func(http.ResponseWriter, *http.Request, *Device, []byte)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		p, err := protocol.Parse(r.Header.Get(protocol.ProofHeader), protocol.TypProof, protocol.DeviceAlgorithms())
		if err != nil {
			writeError(w, http.StatusUnauthorized, protocol.ErrInvalidProof, "%v", err)
			return
		}
		s.mu.Lock()
		dev := s.devices[p.Header.KeyID]
		s.mu.Unlock()
		if dev == nil {
			writeError(w, http.StatusUnauthorized, protocol.ErrUnknownDevice, "unknown device %q", p.Header.KeyID)
			return
		}
		var claims protocol.ProofClaims
		if err := p.Verify(dev.Key, &claims); err != nil {
			writeError(w, http.StatusUnauthorized, protocol.ErrInvalidProof, "%v", err)
			return
		}
		wantBH := ""
		if len(body) > 0 {
			wantBH = protocol.BodyHash(body)
		}
		switch {
		case claims.Method != r.Method:
			err = fmt.Errorf("htm %q, want %q", claims.Method, r.Method)
		case claims.URL != s.URL+r.URL.Path:
			err = fmt.Errorf("htu %q, want %q", claims.URL, s.URL+r.URL.Path)
		case !s.fresh(claims.IssuedAt):
			err = fmt.Errorf("iat %d is not fresh", claims.IssuedAt)
		case claims.BodyHash != wantBH:
			err = fmt.Errorf("bh %q, want %q", claims.BodyHash, wantBH)
		case len(claims.JTI) < 16:
			err = fmt.Errorf("jti %q is too short", claims.JTI)
		}
		if err != nil {
			writeError(w, http.StatusUnauthorized, protocol.ErrInvalidProof, "%v", err)
			return
		}
		s.mu.Lock()
		replay := s.jtis[claims.JTI]
		s.jtis[claims.JTI] = true
		if !replay {
			s.proofs = append(s.proofs, claims)
		}
		s.mu.Unlock()
		if replay {
			writeError(w, http.StatusUnauthorized, protocol.ErrInvalidProof, "jti replayed")
			return
		}
		h(w, r, dev, body)
	}
}

func (s *Server) pendingLocked(user string) []protocol.ChallengeItem {
	items := []protocol.ChallengeItem{}
	for _, id := range s.order {
		c := s.challenges[id]
		if c.user == user && c.state == "pending" {
			items = append(items, protocol.ChallengeItem{ID: c.id, State: c.state, Signed: c.signed})
		}
	}
	return items
}

func (s *Server) pending(w http.ResponseWriter, r *http.Request, dev *Device, _ []byte) {
	wait, err := strconv.Atoi(r.URL.Query().Get("wait"))
	if err != nil || wait < 0 || wait > 30 {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "wait must be 0 to 30")
		return
	}
	known := map[string]bool{}
	if k := r.URL.Query().Get("known"); k != "" {
		for _, id := range strings.Split(k, ",") {
			known[id] = true
		}
	}
	// The long-poll answers when the pending set differs from known.
	differs := func(items []protocol.ChallengeItem) bool {
		if len(items) != len(known) {
			return true
		}
		for _, it := range items {
			if !known[it.ID] {
				return true
			}
		}
		return false
	}
	timer := time.NewTimer(time.Duration(wait) * time.Second)
	defer timer.Stop()
	parked := false
	for {
		s.mu.Lock()
		items := s.pendingLocked(dev.User)
		changed := s.changed
		if differs(items) || wait == 0 {
			if !parked {
				s.pendingGets++
				s.changedLocked()
			}
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, protocol.PendingResponse{Challenges: items})
			return
		}
		if !parked {
			parked = true
			s.polls++
			s.pendingGets++
			s.changedLocked()
			changed = s.changed
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			wait = 0
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

func (s *Server) fetch(w http.ResponseWriter, r *http.Request, dev *Device, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.challenges[r.PathValue("id")]
	if c == nil || c.user != dev.User {
		writeError(w, http.StatusNotFound, protocol.ErrNotFound, "no such challenge")
		return
	}
	writeJSON(w, http.StatusOK, protocol.ChallengeItem{ID: c.id, State: c.state, Signed: c.signed})
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, dev *Device, body []byte) {
	var req protocol.AnswerRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "%v", err)
		return
	}
	p, err := protocol.Parse(req.Answer, protocol.TypAnswer, protocol.DeviceAlgorithms())
	if err == nil && p.Header.KeyID != dev.ID {
		err = fmt.Errorf("kid %q is not the device %q", p.Header.KeyID, dev.ID)
	}
	var claims protocol.AnswerClaims
	if err == nil {
		err = p.Verify(dev.Key, &claims)
	}
	if err != nil {
		writeError(w, http.StatusForbidden, protocol.ErrInvalidAnswer, "%v", err)
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = append(s.answers, Answer{DeviceID: dev.ID, JWS: req.Answer, Claims: claims})
	c := s.challenges[id]
	if c == nil || c.user != dev.User {
		writeError(w, http.StatusNotFound, protocol.ErrNotFound, "no such challenge")
		return
	}
	switch {
	case claims.ID != id:
		err = fmt.Errorf("cid %q is not %q", claims.ID, id)
	case claims.Hash != protocol.ChallengeHash(c.signed):
		err = errors.New("chash does not match the challenge")
	case claims.Decision != protocol.Approve && claims.Decision != protocol.Deny && claims.Decision != protocol.Fraud:
		err = fmt.Errorf("decision %q", claims.Decision)
	case !s.fresh(claims.IssuedAt):
		err = fmt.Errorf("iat %d is not fresh", claims.IssuedAt)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidAnswer, "%v", err)
		return
	}
	if c.state == "pending" && s.now().After(c.expires) {
		c.state = "expired"
		s.changedLocked()
	}
	switch c.state {
	case "pending":
	case "expired":
		writeError(w, http.StatusConflict, protocol.ErrExpired, "the challenge expired")
		return
	default:
		writeError(w, http.StatusConflict, protocol.ErrAlreadyAnswered, "the challenge is %s", c.state)
		return
	}
	if claims.Decision == protocol.Approve && c.number != "" && claims.Number != c.number {
		writeError(w, http.StatusForbidden, protocol.ErrInvalidAnswer, "wrong number")
		return
	}
	c.state = map[string]string{protocol.Approve: "approved", protocol.Deny: "denied", protocol.Fraud: "fraud"}[claims.Decision]
	s.changedLocked()
	writeJSON(w, http.StatusOK, protocol.AnswerResponse{State: c.state})
}

func (s *Server) update(w http.ResponseWriter, _ *http.Request, _ *Device, body []byte) {
	var u protocol.DeviceUpdate
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		writeError(w, http.StatusBadRequest, protocol.ErrInvalidRequest, "%v", err)
		return
	}
	s.mu.Lock()
	s.updates = append(s.updates, u)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pushKeys(w http.ResponseWriter, _ *http.Request, _ *Device, _ []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pushKeyGets++
	writeJSON(w, http.StatusOK, protocol.PushKeysResponse{PushKeys: s.publishedLocked(), Endorsements: slices.Clone(s.endorsements)})
}

// ---- helpers

func publicJWK(k ed25519.PrivateKey) jose.JSONWebKey {
	j := jose.JSONWebKey{Key: k.Public(), Algorithm: protocol.AlgEdDSA, Use: "sig"}
	j.KeyID = kidOf(k)
	return j
}

func kidOf(k ed25519.PrivateKey) string {
	tp, err := protocol.Thumbprint(jose.JSONWebKey{Key: k.Public()})
	if err != nil {
		panic(err) // an Ed25519 key always has a thumbprint
	}
	return tp
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
