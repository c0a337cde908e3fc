package pushauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Handler serves the device API (docs/device-protocol.md) under /device/v1/.
// ClientIP, if set, says which address a request came from (for a proxy
// setup); by default it is the connection's peer.
func (e *Engine) Handler(clientIP func(*http.Request) string) http.Handler {
	if clientIP == nil {
		clientIP = peerIP
	}
	h := &handler{e: e, ip: clientIP}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathEnroll, h.enroll)
	mux.HandleFunc("GET "+protocol.PathPending, h.device(h.pending))
	mux.HandleFunc("GET "+protocol.PathChallenge+"{id}", h.device(h.challenge))
	mux.HandleFunc("POST "+protocol.PathChallenge+"{id}"+protocol.SuffixAnswer, h.device(h.answer))
	mux.HandleFunc("PUT "+protocol.PathDevice, h.device(h.update))
	mux.HandleFunc("GET "+protocol.PathPushKeys, h.device(h.pushKeys))
	mux.HandleFunc("/device/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &DeviceError{Status: http.StatusNotFound, Code: protocol.ErrNotFound, Reason: "no such device endpoint"})
	})
	return mux
}

type handler struct {
	e  *Engine
	ip func(*http.Request) string
}

func peerIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// readBody reads at most protocol.MaxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &DeviceError{Status: http.StatusRequestEntityTooLarge, Code: protocol.ErrInvalidRequest, Reason: "request body too large"}
	}
	if err != nil {
		return nil, &DeviceError{Status: http.StatusBadRequest, Code: protocol.ErrInvalidRequest, Reason: "reading the request body failed"}
	}
	return body, nil
}

type deviceHandler func(w http.ResponseWriter, r *http.Request, dev store.Device, body []byte)

// device authenticates the request's proof before calling next.
func (h *handler) device(next deviceHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		body, err := readBody(w, r)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		dev, err := h.e.Authenticate(r.Context(), r, body)
		if err != nil {
			var de *DeviceError
			if errors.As(err, &de) {
				h.e.log.Info("device request refused", "device", dev.ID, "path", r.URL.Path, "reason", de.Reason)
			}
			h.fail(w, r, err)
			return
		}
		next(w, r, dev, body)
	}
}

func (h *handler) enroll(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	body, err := readBody(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d, err := h.e.Enroll(r.Context(), strings.TrimSpace(string(body)), h.ip(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, protocol.EnrollResponse{DeviceID: d.ID, User: d.User, PushKeys: h.e.PushKeys(), Endorsements: h.e.Endorsements()})
}

func (h *handler) pending(w http.ResponseWriter, r *http.Request, dev store.Device, _ []byte) {
	wait := time.Duration(0)
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, &DeviceError{Status: http.StatusBadRequest, Code: protocol.ErrInvalidRequest, Reason: "wait must be a number of seconds"})
			return
		}
		// Clamp before multiplying: a huge n would overflow to a negative
		// duration (and a write deadline in the past).
		wait = time.Duration(min(n, int(h.e.cfg.LongPoll/time.Second))) * time.Second
	}
	var known []string
	if s := r.URL.Query().Get("known"); s != "" {
		known = strings.Split(s, ",")
		if len(known) > maxKnown {
			h.fail(w, r, &DeviceError{Status: http.StatusBadRequest, Code: protocol.ErrInvalidRequest, Reason: "known lists too many challenges"})
			return
		}
	}
	if wait > 0 {
		if !h.e.polls.acquire(dev.ID) {
			h.fail(w, r, &DeviceError{Status: http.StatusTooManyRequests, Code: protocol.ErrRateLimited, Reason: "too many long-polls open for this device"})
			return
		}
		defer h.e.polls.release(dev.ID)
	}
	// The long-poll may outlast the server's write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
	items, err := h.e.Pending(r.Context(), dev, wait, known)
	if err != nil && !errors.Is(err, context.Canceled) {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.PendingResponse{Challenges: items})
}

func (h *handler) challenge(w http.ResponseWriter, r *http.Request, dev store.Device, _ []byte) {
	id := r.PathValue("id")
	if !validID(id) {
		h.fail(w, r, &DeviceError{Status: http.StatusNotFound, Code: protocol.ErrNotFound, Reason: "no such challenge"})
		return
	}
	c, err := h.e.state.GetChallenge(r.Context(), id)
	// A device sees only its user's challenges, and only those sent after
	// it enrolled (as in the pending list).
	// A device the application's key policy refuses does not see it.
	if errors.Is(err, store.ErrNotFound) || (err == nil && (c.User != dev.User || dev.CreatedAt.After(c.CreatedAt) || !qualifies(dev, challengeKeys(c)))) {
		writeError(w, &DeviceError{Status: http.StatusNotFound, Code: protocol.ErrNotFound, Reason: "no such challenge"})
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.ChallengeItem{ID: c.ID, State: string(c.State), Signed: c.Signed})
}

func (h *handler) answer(w http.ResponseWriter, r *http.Request, dev store.Device, body []byte) {
	var req protocol.AnswerRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, &DeviceError{Status: http.StatusBadRequest, Code: protocol.ErrInvalidRequest, Reason: "answer body is not JSON"})
		return
	}
	c, err := h.e.AnswerWith(r.Context(), dev, r.PathValue("id"), req, h.ip(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.AnswerResponse{State: string(c.State), FraudReported: c.FraudReported})
}

func (h *handler) update(w http.ResponseWriter, r *http.Request, dev store.Device, body []byte) {
	var u protocol.DeviceUpdate
	if err := json.Unmarshal(body, &u); err != nil {
		writeError(w, &DeviceError{Status: http.StatusBadRequest, Code: protocol.ErrInvalidRequest, Reason: "update body is not a JSON object"})
		return
	}
	if _, err := h.e.UpdateDevice(r.Context(), dev, u, h.ip(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) pushKeys(w http.ResponseWriter, _ *http.Request, _ store.Device, _ []byte) {
	writeJSON(w, http.StatusOK, protocol.PushKeysResponse{PushKeys: h.e.PushKeys(), Endorsements: h.e.Endorsements()})
}

// maxKnown bounds the ids a long-poll may name as known.
const maxKnown = 16

// Pending returns the challenges waiting for dev's user. With a wait, it
// long-polls: it answers as soon as the pending set differs from known (the
// ids the device already shows; none by default), so a new challenge and
// one answered elsewhere both end the wait. An unchanged set after the wait
// is normal.
func (e *Engine) Pending(ctx context.Context, dev store.Device, wait time.Duration, known []string) ([]protocol.ChallengeItem, error) {
	wake, cancel := e.bus.Subscribe(userTopic(dev.User))
	defer cancel()
	e.touch(ctx, dev)
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	for {
		cs, err := e.state.PendingChallenges(ctx, dev.User, e.now())
		if err != nil {
			return nil, err
		}
		items := []protocol.ChallengeItem{}
		for _, c := range cs {
			if !dev.CreatedAt.After(c.CreatedAt) && !e.closes.queued(c.ID) && qualifies(dev, challengeKeys(c)) {
				items = append(items, protocol.ChallengeItem{ID: c.ID, State: string(c.State), Signed: c.Signed})
			}
		}
		if timer == nil || !sameIDs(items, known) {
			return items, nil
		}
		select {
		case <-wake:
		case <-timer:
			return items, nil
		case <-e.closing:
			return items, nil
		case <-ctx.Done():
			return items, ctx.Err()
		}
	}
}

// sameIDs reports whether items are exactly the challenges named in known.
func sameIDs(items []protocol.ChallengeItem, known []string) bool {
	set := make(map[string]bool, len(known))
	for _, id := range known {
		if id != "" {
			set[id] = true
		}
	}
	if len(items) != len(set) {
		return false
	}
	for _, it := range items {
		if !set[it.ID] {
			return false
		}
	}
	return true
}

// touch records that the device was seen, at most once a minute.
func (e *Engine) touch(ctx context.Context, dev store.Device) {
	now := e.now()
	if now.Sub(dev.LastSeenAt) < time.Minute {
		return
	}
	_, err := e.st.UpdateDevice(ctx, dev.ID, func(d store.Device) (store.Device, error) {
		d.LastSeenAt = now
		return d, nil
	})
	if err != nil {
		e.log.Warn("recording device last seen failed", "device", dev.ID, "err", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail logs an internal error and answers it.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var de *DeviceError
	if errors.As(err, &de) {
		h.e.m.refusals.WithLabelValues(de.Code).Inc()
	} else {
		h.e.log.Error("device request failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, err)
}

// writeError answers with a protocol.Error. Internal errors say nothing
// of their cause to the device; the log has it.
func writeError(w http.ResponseWriter, err error) {
	var de *DeviceError
	if errors.As(err, &de) {
		desc := de.Reason
		if de.Status == http.StatusUnauthorized && de.Code != protocol.ErrDeviceRevoked {
			desc = "" // do not help an attacker tune forged proofs
		}
		if de.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "60")
		}
		writeJSON(w, de.Status, protocol.Error{Code: de.Code, Description: desc})
		return
	}
	writeJSON(w, http.StatusInternalServerError, protocol.Error{Code: protocol.ErrServer})
}
