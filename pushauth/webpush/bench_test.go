package webpush

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bridge-idp/bridge/internal/testenv"
	"github.com/bridge-idp/bridge/pushauth"
	"github.com/bridge-idp/bridge/pushauth/fcm"
	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/pushauth/pushtest"
)

// benchCID is a challenge id as the engine makes them (27 characters).
const benchCID = "abcdefghijklmnopqrstuvwxyz0"

// benchPayload is the plaintext Send encrypts for a challenge wake.
var benchPayload = []byte(`{"t":"challenge","cid":"` + benchCID + `"}`)

// benchParallelism makes RunParallel's goroutines as many as the engine's
// delivery workers (pushauth.DefaultDeliveryWorkers) on 2 cores.
const benchParallelism = pushauth.DefaultDeliveryWorkers / 2

// acceptAll is a push service that reads the body and answers 201, as
// FCM's and Mozilla's do, without decrypting or verifying anything: the
// figure is the sender's, not the service's.
func acceptAll(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Location", "/message/1")
		w.WriteHeader(http.StatusCreated)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchSubscription is a browser's subscription on srv to vapid, and the
// browser's ECDH public key and auth secret.
func benchSubscription(b *testing.B, srv *httptest.Server, vapid string) (string, *ecdh.PublicKey, []byte) {
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth := make([]byte, authLen)
	rand.Read(auth)
	var sub protocol.WebPushSubscription
	sub.Endpoint = srv.URL + "/push/bench"
	sub.Keys.P256DH = base64.RawURLEncoding.EncodeToString(ua.PublicKey().Bytes())
	sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	sub.VAPID = vapid
	tok, err := json.Marshal(sub)
	if err != nil {
		b.Fatal(err)
	}
	return string(tok), ua.PublicKey(), auth
}

// BenchmarkSend measures one challenge wake sent over Web Push, as a
// delivery worker sends it: the subscription parsed, the payload
// encrypted (RFC 8291), the VAPID Authorization header (RFC 8292; reused
// for an hour per origin and key), and one HTTP/1.1 POST on loopback to a
// push service that answers 201. The engine's 32 delivery workers are 32
// goroutines here.
//
// Sub-benchmarks: jwt=reused is the sender as it runs; jwt=every-send
// moves the sender's clock past the reuse window before each send, so
// every send signs a new JWT (what the cache saves). peer=post is the
// same-sized body POSTed with the same headers by a client alone: the
// round trip without the sender's work. peer=fcm is the FCM sender
// (firebase.google.com/go) against the fake FCM of pushtest, its OAuth
// token cached: the other push provider's cost for the same wake.
func BenchmarkSend(b *testing.B) {
	b.Run("sender=webpush/jwt=reused", func(b *testing.B) { benchSend(b, false) })
	b.Run("sender=webpush/jwt=every-send", func(b *testing.B) { benchSend(b, true) })
	b.Run("peer=post", benchPost)
	b.Run("peer=fcm", benchFCM)
}

func newBenchSender(b *testing.B, srv *httptest.Server) *Sender {
	clock := testenv.NewClock(time.Now().Truncate(time.Second))
	s, err := New(Config{Subject: "mailto:ops@example.org", AllowedHosts: []string{"127.0.0.1"}}, openKeys(b, clock), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchWake() pushauth.Wake {
	return pushauth.Wake{ChallengeID: benchCID, Kind: pushauth.WakeChallenge, Expires: time.Now().Add(time.Hour)}
}

func benchSend(b *testing.B, freshJWT bool) {
	srv := acceptAll(b)
	s := newBenchSender(b, srv)
	tok, _, _ := benchSubscription(b, srv, s.PublicKey())
	if freshJWT {
		// Each call of now is an hour and a second later than the last:
		// the cached JWT is always too old. The wake's TTL is 0 then,
		// which costs nothing more.
		var hours atomic.Int64
		start := time.Now()
		s.now = func() time.Time { return start.Add(time.Duration(hours.Add(1)) * (jwtReuse + time.Second)) }
	}
	w := benchWake()
	ctx := context.Background()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Send(ctx, tok, w); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}

// benchPost is the round trip alone: a body of a challenge wake's size,
// with a Web Push request's headers (the Authorization made once), POSTed
// by a client like the sender's.
func benchPost(b *testing.B) {
	srv := acceptAll(b)
	s := newBenchSender(b, srv)
	_, uaPub, auth := benchSubscription(b, srv, s.PublicKey())
	body, err := seal(benchPayload, uaPub, auth)
	if err != nil {
		b.Fatal(err)
	}
	k, pub, _ := s.signer(mustPoint(b, s.PublicKey()))
	authz, err := s.jwts.authorization(srv.URL, k.ID, k.Signer, pub, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	ctx := context.Background()
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/push/bench", strings.NewReader(string(body)))
			req.Header.Set("TTL", "3600")
			req.Header.Set("Urgency", "high")
			req.Header.Set("Topic", benchCID)
			req.Header.Set("Content-Encoding", "aes128gcm")
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("Authorization", authz)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %s", resp.Status)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}

func mustPoint(b *testing.B, s string) []byte {
	p, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// benchFCM sends the same wake with the FCM sender to pushtest's fake FCM
// (which checks and records each message: a little of its work is in the
// figure).
func benchFCM(b *testing.B) {
	fake := pushtest.StartFCM(b)
	ctx := context.Background()
	s, err := fcm.New(ctx, fcm.Config{CredentialsFile: fake.CredentialsFile(b), Endpoint: fake.Endpoint()}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	const tok = "fcm-bench-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
	w := benchWake()
	if err := s.Send(ctx, tok, w); err != nil { // fetches and caches the OAuth token
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Send(ctx, tok, w); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pushes/s")
}

// BenchmarkEncrypt measures RFC 8291 alone on a challenge wake's payload
// (seal: a fresh ephemeral P-256 key and salt, ECDH, HKDF, AES-128-GCM of
// one 128-byte record). peer=floor is the same without RFC 8291's key
// schedule: a fresh P-256 key, ECDH and AES-128-GCM of the same record,
// the key taken from the shared secret directly.
func BenchmarkEncrypt(b *testing.B) {
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	auth := make([]byte, authLen)
	rand.Read(auth)
	b.Run("rfc8291", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := seal(benchPayload, ua.PublicKey(), auth); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("peer=floor", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			nonce := make([]byte, 12)
			for pb.Next() {
				as, err := ecdh.P256().GenerateKey(rand.Reader)
				if err != nil {
					b.Error(err)
					return
				}
				secret, err := as.ECDH(ua.PublicKey())
				if err != nil {
					b.Error(err)
					return
				}
				block, _ := aes.NewCipher(secret[:16])
				gcm, _ := cipher.NewGCM(block)
				pt := make([]byte, padTo)
				copy(pt, benchPayload)
				pt[len(benchPayload)] = 0x02
				_ = gcm.Seal(nil, nonce, pt, nil)
			}
		})
	})
}
