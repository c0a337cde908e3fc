package pushauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/bridge-idp/bridge/store"
)

// wake sends w to each device that has a usable push token. Delivery runs
// on the engine's workers, never on the caller's goroutine: a slow provider
// cannot hold up a login, and a push that fails still leaves the challenge
// answerable by long-poll.
func (e *Engine) wake(devs []store.Device, w Wake) {
	for _, d := range devs {
		if d.PushProvider == "" || d.PushToken == "" || d.PushTokenStale {
			continue
		}
		s, ok := e.senders[d.PushProvider]
		if !ok {
			continue
		}
		d := d
		if !e.enqueue(func() { e.send(s, d, w) }) {
			e.m.deliveries.WithLabelValues(d.PushProvider, "dropped").Inc()
			e.log.Warn("push queue full; the device will find the challenge by long-poll", "device", d.ID, "challenge", w.ChallengeID)
		}
	}
}

// enqueue hands job to the delivery workers without waiting. It reports
// false when the queue is full or the engine is closing.
func (e *Engine) enqueue(job func()) bool {
	e.jobsMu.RLock()
	defer e.jobsMu.RUnlock()
	select {
	case <-e.closing:
		return false
	default:
	}
	select {
	case e.jobs <- job:
		return true
	default:
		return false
	}
}

func (e *Engine) send(s Sender, d store.Device, w Wake) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.DeliveryTimeout)
	defer cancel()
	err := s.Send(ctx, d.PushToken, w)
	switch {
	case err == nil:
		e.m.deliveries.WithLabelValues(s.Provider(), "ok").Inc()
		return
	case errors.Is(err, ErrTokenInvalid):
		e.m.deliveries.WithLabelValues(s.Provider(), "stale_token").Inc()
		e.log.Info("push token no longer valid; device falls back to long-poll", "device", d.ID, "provider", s.Provider(), "err", err)
		_, uerr := e.st.UpdateDevice(ctx, d.ID, func(cur store.Device) (store.Device, error) {
			if cur.PushToken == d.PushToken {
				cur.PushTokenStale = true
			}
			return cur, nil
		})
		if uerr != nil {
			e.log.Error("marking push token stale failed", "device", d.ID, "err", uerr)
		}
	default:
		e.m.deliveries.WithLabelValues(s.Provider(), "error").Inc()
		e.log.Warn("push delivery failed; device can still answer by long-poll", "device", d.ID, "provider", s.Provider(), "kind", w.Kind, "err", err)
	}
}

// FraudReport is the body POSTed to the fraud webhook.
type FraudReport struct {
	Event       string    `json:"event"` // "push.fraud_report"
	User        string    `json:"user"`
	Challenge   string    `json:"challenge"`
	Application string    `json:"application"`
	Channel     string    `json:"channel"`
	ClientIP    string    `json:"client_ip,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	Device      string    `json:"device,omitempty"`
	Time        time.Time `json:"time"`
	LockedUntil time.Time `json:"locked_until"`
}

// fraudWebhook tells the configured webhook about a fraud report, in the
// background, retrying a failed call twice.
func (e *Engine) fraudWebhook(c store.Challenge, dev *store.Device) {
	hook := e.cfg.FraudWebhook
	if hook.URL == "" {
		return
	}
	now := e.now().UTC()
	r := FraudReport{
		Event: "push.fraud_report", User: c.User, Challenge: c.ID, Application: c.AppID, Channel: c.Channel,
		ClientIP: c.ClientIP, UserAgent: c.UserAgent, Time: now, LockedUntil: now.Add(e.cfg.FraudLock),
	}
	if dev != nil {
		r.Device = dev.ID
	}
	body, err := json.Marshal(r)
	if err != nil {
		e.log.Error("fraud webhook: encoding failed", "err", err)
		return
	}
	e.hooks.Add(1)
	go func() {
		defer e.hooks.Done()
		for attempt := range 3 {
			if attempt > 0 {
				select {
				case <-time.After(time.Duration(attempt) * time.Second):
				case <-e.closing:
					return
				}
			}
			if err := e.postWebhook(hook, body, now); err != nil {
				e.log.Warn("fraud webhook failed", "attempt", attempt+1, "user", c.User, "err", err)
				continue
			}
			return
		}
		e.log.Error("fraud webhook gave up; the fraud report is in the audit log", "user", c.User, "challenge", c.ID)
	}()
}

func (e *Engine) postWebhook(hook Webhook, body []byte, now time.Time) error {
	ctx, cancel := context.WithTimeout(context.Background(), hook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(hook.Secret) > 0 {
		ts := strconv.FormatInt(now.Unix(), 10)
		m := hmac.New(sha256.New, hook.Secret)
		m.Write([]byte(ts + "."))
		m.Write(body)
		req.Header.Set("Bridge-Timestamp", ts)
		req.Header.Set("Bridge-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := e.httpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// pollLimiter caps the long-polls a device holds open at once, so one
// device cannot tie up the node's goroutines and timers.
type pollLimiter struct {
	mu   sync.Mutex
	open map[string]int
}

// maxPollsPerDevice is how many long-polls one device may hold at once.
const maxPollsPerDevice = 4

func (p *pollLimiter) acquire(device string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		p.open = map[string]int{}
	}
	if p.open[device] >= maxPollsPerDevice {
		return false
	}
	p.open[device]++
	return true
}

func (p *pollLimiter) release(device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open[device]--; p.open[device] <= 0 {
		delete(p.open, device)
	}
}

// ipKey is the key an address is limited under: IPv6 addresses by their
// /64, which one subscriber usually holds whole.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("pushauth: encoding: %w", err)
	}
	return b, nil
}
