package pushauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bridge-idp/bridge/pushauth/protocol"
	"github.com/bridge-idp/bridge/store"
)

// Authenticate checks a device request's proof (header Device-Proof): a JWS
// by an enrolled, active device's key over this method, URL (without
// query), body and a recent time, never seen before. It returns the device.
func (e *Engine) Authenticate(ctx context.Context, r *http.Request, body []byte) (store.Device, error) {
	proof := r.Header.Get(protocol.ProofHeader)
	if proof == "" {
		return store.Device{}, deviceErr(401, protocol.ErrInvalidProof, "request without a device proof")
	}
	if len(r.Header.Values(protocol.ProofHeader)) != 1 {
		return store.Device{}, deviceErr(401, protocol.ErrInvalidProof, "request with several device proofs")
	}
	p, err := protocol.Parse(proof, protocol.TypProof, protocol.DeviceAlgorithms())
	if err != nil {
		return store.Device{}, deviceErr(401, protocol.ErrInvalidProof, "%v", err)
	}
	kid := p.Header.KeyID
	if !validID(kid) {
		return store.Device{}, deviceErr(401, protocol.ErrInvalidProof, "device proof without a device id")
	}
	dev, err := e.st.GetDevice(ctx, kid)
	if errors.Is(err, store.ErrNotFound) {
		return store.Device{}, deviceErr(401, protocol.ErrUnknownDevice, "proof from unknown device %q", kid)
	}
	if err != nil {
		return store.Device{}, fmt.Errorf("pushauth: reading device: %w", err)
	}
	if p.Header.Algorithm != dev.KeyAlg {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof signed with %s, device enrolled %s", p.Header.Algorithm, dev.KeyAlg)
	}
	key, err := deviceKey(dev)
	if err != nil {
		return dev, err
	}
	var pc protocol.ProofClaims
	if err := p.Verify(key, &pc); err != nil {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "%v", err)
	}
	if dev.Status != store.DeviceActive {
		return dev, deviceErr(401, protocol.ErrDeviceRevoked, "request from a revoked device")
	}
	if pc.Method != r.Method {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof for method %q, request is %s", clip(pc.Method, 16), r.Method)
	}
	if want := e.cfg.BaseURL + r.URL.Path; pc.URL != want {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof for URL %q, request is %q", clip(pc.URL, 200), want)
	}
	now := e.now()
	iat := time.Unix(pc.IssuedAt, 0)
	if iat.Before(now.Add(-e.cfg.ProofMaxAge)) || iat.After(now.Add(e.cfg.ProofMaxAge)) {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof time %s is more than %v from the server's", iat.UTC().Format(time.RFC3339), e.cfg.ProofMaxAge)
	}
	switch {
	case len(body) == 0 && pc.BodyHash != "":
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof names a body, the request has none")
	case len(body) > 0 && pc.BodyHash != protocol.BodyHash(body):
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof does not match the request body")
	}
	if len(pc.JTI) < 16 || len(pc.JTI) > 64 {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "proof id must be 16 to 64 characters")
	}
	// Remembered until no clock within ProofMaxAge would accept it again.
	err = e.state.UseOnce(ctx, "device-proof", dev.ID+":"+pc.JTI, now, iat.Add(e.cfg.ProofMaxAge+time.Second))
	if errors.Is(err, store.ErrUsed) {
		return dev, deviceErr(401, protocol.ErrInvalidProof, "replayed device proof")
	}
	if err != nil {
		return dev, fmt.Errorf("pushauth: proof replay cache: %w", err)
	}
	return dev, nil
}

// verifyEmbedded parses an enrollment JWS and verifies it with the key in
// its own "jwk" header (proof of possession), returning that key and its
// algorithm.
func verifyEmbedded(signed string, claims *protocol.EnrollClaims) (jose.JSONWebKey, string, error) {
	p, err := protocol.Parse(signed, protocol.TypEnroll, protocol.DeviceAlgorithms())
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	jwk := p.Header.JSONWebKey
	if jwk == nil {
		return jose.JSONWebKey{}, "", errors.New("enrollment carries no device key (jwk header)")
	}
	alg, err := protocol.DeviceKey(*jwk)
	if err != nil {
		return jose.JSONWebKey{}, "", err
	}
	if p.Header.Algorithm != alg {
		return jose.JSONWebKey{}, "", fmt.Errorf("enrollment signed with %s but its key is for %s", p.Header.Algorithm, alg)
	}
	if err := p.Verify(jwk, claims); err != nil {
		return jose.JSONWebKey{}, "", err
	}
	return *jwk, alg, nil
}
