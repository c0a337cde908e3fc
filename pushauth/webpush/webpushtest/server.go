package webpushtest

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
)

// Limits the service enforces, as FCM and Mozilla's autopush do.
const (
	MaxBody       = 4096           // RFC 8030 §7.2
	MaxJWTAhead   = 24 * time.Hour // RFC 8292 §2: exp at most 24 hours ahead
	maxTopic      = 32             // RFC 8030 §5.4
	pathPrefix    = "/push/"
	messagePrefix = "/message/"
)

// Message is one push the service accepted.
type Message struct {
	Token     string      // the subscription's token, as NewSubscription returned it
	Header    http.Header // the request's headers
	TTL       int         // the TTL header
	Urgency   string      // the Urgency header ("" if absent)
	Topic     string      // the Topic header ("" if absent)
	Plaintext []byte      // the decrypted payload
	// The VAPID JWT's claims and the key (k) that verified it.
	Audience string
	Subject  string
	Expires  time.Time
	VAPIDKey string
}

// Refusal is a request the service refused (or answered with a status
// set by Fail).
type Refusal struct {
	Token  string // the subscription's token; "" for an unknown endpoint
	Status int
	Reason string
}

// Reply is an answer Fail makes the service give.
type Reply struct {
	Status     int    // 404, 410, 429, 500, ...
	RetryAfter string // the Retry-After header, if any
	Times      int    // how many pushes get it; 0: every push until Fail is called again
}

// Server is a local push service: the RFC 8030 push resource of the
// subscriptions NewSubscription makes, on 127.0.0.1.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	now     func() time.Time
	subs    map[string]*sub // by the endpoint path's id
	n       int             // messages accepted, for Location
	refused []Refusal
	added   chan struct{} // closed (and replaced) when a message is recorded
	msgs    []Message
	next    int // index of the message Next returns
}

type sub struct {
	token string
	priv  *ecdh.PrivateKey
	auth  []byte
	vapid []byte // the applicationServerKey
	reply Reply
	left  int // pushes still answered with reply (when reply.Times > 0)
}

// Start starts a push service on 127.0.0.1, closed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, now: time.Now, subs: map[string]*sub{}, added: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the service's origin, http://127.0.0.1:PORT: the aud its VAPID
// JWTs must carry.
func (s *Server) URL() string { return s.srv.URL }

// Host is the host to put on the sender's allow-list: 127.0.0.1.
func (s *Server) Host() string {
	u, _ := url.Parse(s.srv.URL)
	return u.Hostname()
}

// NewSubscription does what a browser does on pushManager.subscribe with
// applicationServerKey vapidPublicKey (base64url of the uncompressed P-256
// point): it makes an ECDH key pair and a 16-byte auth secret and an
// endpoint on this service, and returns the push token the app sends, the
// JSON of protocol.WebPushSubscription.
func (s *Server) NewSubscription(vapidPublicKey string) (string, error) {
	vapid, err := base64.RawURLEncoding.DecodeString(vapidPublicKey)
	if err != nil {
		return "", fmt.Errorf("webpushtest: VAPID key is not base64url: %w", err)
	}
	if _, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), vapid); err != nil {
		return "", fmt.Errorf("webpushtest: VAPID key: %w", err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	auth := make([]byte, 16)
	id := make([]byte, 16)
	if _, err := rand.Read(auth); err != nil {
		return "", err
	}
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	idText := base64.RawURLEncoding.EncodeToString(id)
	var ws protocol.WebPushSubscription
	ws.Endpoint = s.srv.URL + pathPrefix + idText
	ws.Keys.P256DH = base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes())
	ws.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	ws.VAPID = vapidPublicKey
	tok, err := json.Marshal(ws)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.subs[idText] = &sub{token: string(tok), priv: priv, auth: auth, vapid: vapid}
	s.mu.Unlock()
	return string(tok), nil
}

// SetClock sets the clock the service checks a JWT's exp against (the
// default is time.Now), for tests whose sender runs on a test clock.
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// Fail makes the service answer pushes to the subscription of token with
// r instead of accepting them; Reply{} restores normal service.
func (s *Server) Fail(token string, r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sb := range s.subs {
		if sb.token == token {
			sb.reply, sb.left = r, r.Times
			return
		}
	}
	s.t.Errorf("webpushtest: Fail: no subscription with token %s", token)
}

// Next returns the oldest accepted message not yet returned by Next,
// waiting for one until ctx is done.
func (s *Server) Next(ctx context.Context) (Message, error) {
	for {
		s.mu.Lock()
		if s.next < len(s.msgs) {
			m := s.msgs[s.next]
			s.next++
			s.mu.Unlock()
			return m, nil
		}
		added := s.added
		s.mu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// Messages returns every accepted message, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Refusals returns every request not accepted, oldest first.
func (s *Server) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.refused)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	m, status, reason, retry := s.handle(r)
	if status != http.StatusCreated {
		s.mu.Lock()
		s.refused = append(s.refused, Refusal{Token: m.Token, Status: status, Reason: reason})
		s.mu.Unlock()
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		http.Error(w, reason, status)
		return
	}
	s.mu.Lock()
	s.n++
	loc := s.srv.URL + messagePrefix + strconv.Itoa(s.n)
	s.msgs = append(s.msgs, m)
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusCreated)
}

// handle checks a request to a push resource. It returns the message and
// 201, or the status to answer, why, and a Retry-After.
func (s *Server) handle(r *http.Request) (m Message, status int, reason, retry string) {
	id, ok := strings.CutPrefix(r.URL.Path, pathPrefix)
	s.mu.Lock()
	now := s.now()
	sb := s.subs[id]
	var rep Reply
	if ok && sb != nil && sb.reply.Status != 0 {
		rep = sb.reply
		if sb.reply.Times > 0 {
			if sb.left--; sb.left <= 0 {
				sb.reply = Reply{}
			}
		}
	}
	s.mu.Unlock()
	if !ok || sb == nil {
		return m, http.StatusNotFound, "no such subscription", ""
	}
	m.Token = sb.token
	if rep.Status != 0 {
		return m, rep.Status, "told to answer " + strconv.Itoa(rep.Status), rep.RetryAfter
	}
	if r.Method != http.MethodPost {
		return m, http.StatusMethodNotAllowed, "push resources take POST only", ""
	}
	if status, reason := s.checkHeaders(r, &m); status != 0 {
		return m, status, reason, ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return m, http.StatusBadRequest, "reading the body: " + err.Error(), ""
	}
	if len(body) > MaxBody {
		return m, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxBody), ""
	}
	key, status, reason := checkVAPID(r.Header.Get("Authorization"), s.srv.URL, now, &m)
	if status != 0 {
		return m, status, reason, ""
	}
	if string(key) != string(sb.vapid) {
		return m, http.StatusForbidden, "the VAPID key (k) is not the subscription's applicationServerKey", ""
	}
	pt, err := Decrypt(body, sb.priv, sb.auth)
	if err != nil {
		return m, http.StatusBadRequest, "payload: " + err.Error(), ""
	}
	m.Plaintext = pt
	m.Header = r.Header.Clone()
	return m, http.StatusCreated, "", ""
}

// checkHeaders checks TTL, Content-Encoding, Urgency and Topic.
func (s *Server) checkHeaders(r *http.Request, m *Message) (int, string) {
	ttl := r.Header.Values("TTL")
	if len(ttl) != 1 || ttl[0] == "" || strings.TrimLeft(ttl[0], "0123456789") != "" {
		return http.StatusBadRequest, "TTL header missing or not a non-negative integer"
	}
	n, err := strconv.Atoi(ttl[0])
	if err != nil {
		return http.StatusBadRequest, "TTL out of range"
	}
	m.TTL = n
	if ce := r.Header.Values("Content-Encoding"); len(ce) != 1 || ce[0] != "aes128gcm" {
		return http.StatusUnsupportedMediaType, "Content-Encoding must be aes128gcm"
	}
	if u := r.Header.Values("Urgency"); len(u) > 0 {
		if len(u) != 1 || !slices.Contains([]string{"very-low", "low", "normal", "high"}, u[0]) {
			return http.StatusBadRequest, "Urgency must be very-low, low, normal or high"
		}
		m.Urgency = u[0]
	}
	if t := r.Header.Values("Topic"); len(t) > 0 {
		if len(t) != 1 || !topic(t[0]) {
			return http.StatusBadRequest, "Topic must be 1 to 32 base64url characters"
		}
		m.Topic = t[0]
	}
	return 0, ""
}

func topic(t string) bool {
	if t == "" || len(t) > maxTopic {
		return false
	}
	return strings.Trim(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// checkVAPID checks an Authorization header "vapid t=<JWT>, k=<key>" (RFC
// 8292 §3): the JWT is ES256, signed by k, aud is the service's origin,
// exp in the future and at most 24 hours ahead, sub a mailto: or https:
// URL. It returns k's bytes.
func checkVAPID(h, origin string, now time.Time, m *Message) (key []byte, status int, reason string) {
	const unauthorized = http.StatusUnauthorized
	scheme, params, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return nil, unauthorized, "Authorization must use the vapid scheme (RFC 8292)"
	}
	var t, k string
	for p := range strings.SplitSeq(params, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case !ok:
			return nil, unauthorized, "malformed vapid parameter"
		case name == "t" && t == "":
			t = value
		case name == "k" && k == "":
			k = value
		default:
			return nil, unauthorized, "unknown or repeated vapid parameter " + strconv.Quote(name)
		}
	}
	if t == "" || k == "" {
		return nil, unauthorized, "vapid needs t and k"
	}
	key, err := base64.RawURLEncoding.DecodeString(k)
	if err != nil {
		return nil, unauthorized, "k is not base64url"
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), key)
	if err != nil {
		return nil, unauthorized, "k is not an uncompressed P-256 point"
	}
	jws, err := jose.ParseSigned(t, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, unauthorized, "t is not an ES256 JWS"
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, unauthorized, "the JWT's signature does not verify with k"
	}
	var c struct {
		Aud *string `json:"aud"`
		Exp *int64  `json:"exp"`
		Sub *string `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil || c.Aud == nil || c.Exp == nil || c.Sub == nil {
		return nil, unauthorized, "the JWT's claims must have aud (a string), exp and sub"
	}
	if *c.Aud != origin {
		return nil, unauthorized, fmt.Sprintf("aud %q is not this push service's origin %q", *c.Aud, origin)
	}
	exp := time.Unix(*c.Exp, 0)
	if !exp.After(now) || exp.After(now.Add(MaxJWTAhead)) {
		return nil, unauthorized, "exp must be in the future and at most 24 hours ahead"
	}
	if u, err := url.Parse(*c.Sub); err != nil || !(u.Scheme == "mailto" && u.Opaque != "" || u.Scheme == "https" && u.Host != "") {
		return nil, unauthorized, "sub must be a mailto: or https: URL"
	}
	m.Audience, m.Subject, m.Expires, m.VAPIDKey = *c.Aud, *c.Sub, exp, k
	return key, 0, ""
}
