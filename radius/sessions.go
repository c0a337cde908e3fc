package radius

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/directory"
	"github.com/bridge-idp/bridge/store"
)

// session is an Access-Challenge waiting for the NAS to come back with its
// State. Sessions are kept in the store, so that the answer completes the
// login on whichever node it reaches: a NAS or proxy that balances its
// requests over several bridges sends the second round anywhere.
type session struct {
	id        string // the State, as sent to the NAS
	client    string // the client's name
	typed     string // User-Name as first sent, lower case
	user      string // normalised by the directory
	ident     directory.Identity
	kind      string // FactorPush or FactorOTP
	challenge string // push challenge id
	number    string // number to type on the phone
	expires   time.Time
	attempts  int // wrong codes so far
}

// sessionRecord is a session as the store keeps it.
type sessionRecord struct {
	Client    string             `json:"client"`
	Typed     string             `json:"typed"`
	User      string             `json:"user"`
	Ident     directory.Identity `json:"ident"`
	Kind      string             `json:"kind"`
	Challenge string             `json:"challenge,omitempty"`
	Number    string             `json:"number,omitempty"`
	Attempts  int                `json:"attempts,omitempty"`
}

// errSessionUsed: the State's login has ended (answered on this node or
// another).
var errSessionUsed = errors.New("State already used")

// sessions keeps challenge sessions in the store's Grants under a hash of
// the State, so the store never holds a value that a NAS would accept.
// The requests of one State are handled one at a time on a node (a user
// pressing Enter twice waits for the first answer); across nodes the
// store's single-use consumption decides which request ends the session.
type sessions struct {
	st    store.Grants
	locks keyedMutex
}

func newSessions(st store.Grants) *sessions { return &sessions{st: st} }

func sessionKey(state string) string {
	h := sha256.Sum256([]byte(state))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// put stores a new session.
func (s *sessions) put(ctx context.Context, sess *session, now time.Time) error {
	data, err := json.Marshal(sess.record())
	if err != nil {
		return err
	}
	return s.st.PutGrant(ctx, store.Grant{Kind: store.GrantRADIUSState, ID: sessionKey(sess.id), Subject: sess.user,
		Data: data, CreatedAt: now, ExpiresAt: sess.expires})
}

// take returns the unexpired session of state and locks it on this node;
// unlock must be called. A session that has ended gives errSessionUsed,
// an unknown or expired one store.ErrNotFound.
func (s *sessions) take(ctx context.Context, state string, now time.Time) (_ *session, unlock func(), _ error) {
	unlock = s.locks.lock(state)
	g, err := s.st.GetGrant(ctx, store.GrantRADIUSState, sessionKey(state), now)
	if err == nil && !g.UsedAt.IsZero() {
		err = errSessionUsed
	}
	var sess *session
	if err == nil {
		sess, err = fromRecord(state, g)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return sess, unlock, nil
}

// countAttempt records one more wrong code and returns the count, as the
// store has it (another node's wrong codes for the same State count too).
func (s *sessions) countAttempt(ctx context.Context, sess *session, now time.Time) (int, error) {
	var n int
	_, err := s.st.UpdateGrant(ctx, store.GrantRADIUSState, sessionKey(sess.id), now, func(g store.Grant) (store.Grant, error) {
		var r sessionRecord
		if err := json.Unmarshal(g.Data, &r); err != nil {
			return g, err
		}
		r.Attempts++
		n = r.Attempts
		data, err := json.Marshal(r)
		g.Data = data
		return g, err
	})
	sess.attempts = n
	return n, err
}

// end uses the session up: of any number of requests on any number of
// nodes, one gets nil and the rest errSessionUsed.
func (s *sessions) end(ctx context.Context, sess *session, now time.Time) error {
	_, err := s.st.ConsumeGrant(ctx, store.GrantRADIUSState, sessionKey(sess.id), now)
	if errors.Is(err, store.ErrUsed) {
		return errSessionUsed
	}
	return err
}

func (sess *session) record() sessionRecord {
	return sessionRecord{Client: sess.client, Typed: sess.typed, User: sess.user, Ident: sess.ident,
		Kind: sess.kind, Challenge: sess.challenge, Number: sess.number, Attempts: sess.attempts}
}

func fromRecord(state string, g store.Grant) (*session, error) {
	var r sessionRecord
	if err := json.Unmarshal(g.Data, &r); err != nil {
		return nil, fmt.Errorf("radius: challenge session does not decode: %w", err)
	}
	return &session{id: state, client: r.Client, typed: r.Typed, user: r.User, ident: r.Ident, kind: r.Kind,
		challenge: r.Challenge, number: r.Number, expires: g.ExpiresAt, attempts: r.Attempts}, nil
}

// keyedMutex serialises work per key, holding memory only for keys in use.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
