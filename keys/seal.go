package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KEKSize is the size of the key-encryption key: AES-256.
const KEKSize = 32

// sealVersion is the first byte of every sealed value; it names the format
// (AES-256-GCM, 12-byte random nonce) so it can change later.
const sealVersion = 1

// ErrUnseal is returned when a sealed value does not open: the wrong
// key-encryption key, or data that was changed.
var ErrUnseal = errors.New("cannot decrypt: wrong key-encryption key, or the data was modified")

// Sealer encrypts and authenticates secrets at rest (server private keys,
// TOTP secrets) under the operator's key-encryption key (KEK) with
// AES-256-GCM. The associated data binds each sealed value to what it is
// (for example its key id), so a sealed value copied onto another record
// does not open.
type Sealer struct {
	aead cipher.AEAD
	kek  []byte // for DeriveKey
	id   string
}

// NewSealer builds a Sealer from a 32-byte KEK.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("bridge-kek-id:"), kek...))
	return &Sealer{aead: aead, kek: bytes.Clone(kek), id: hex.EncodeToString(sum[:6])}, nil
}

// ID is a short public fingerprint of the KEK, safe to log: it tells
// operators which KEK a node runs with without revealing it.
func (s *Sealer) ID() string { return s.id }

// Seal encrypts plaintext, bound to ad.
func (s *Sealer) Seal(plaintext []byte, ad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plaintext, []byte(ad)), nil
}

// Open decrypts a value sealed with the same KEK and ad.
func (s *Sealer) Open(sealed []byte, ad string) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(ad))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// ParseKEK reads a KEK as operators write it: 64 hex digits or base64
// (standard or URL alphabet, padded or not) of 32 bytes. Surrounding white
// space (a trailing newline in a file) is ignored.
func ParseKEK(text string) ([]byte, error) {
	t := strings.TrimSpace(text)
	if len(t) == 2*KEKSize {
		if b, err := hex.DecodeString(t); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(t); err == nil {
			if len(b) != KEKSize {
				return nil, fmt.Errorf("key-encryption key decodes to %d bytes, want %d", len(b), KEKSize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("key-encryption key must be %d bytes written as 64 hex digits or base64 (make one with: openssl rand -base64 32)", KEKSize)
}

// GenerateKEK makes a new random KEK and returns it with its base64 text
// (the form ParseKEK reads).
func GenerateKEK() (kek []byte, text string, err error) {
	kek = make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		return nil, "", err
	}
	return kek, base64.StdEncoding.EncodeToString(kek), nil
}

// DeriveKey returns a 32-byte subkey of the KEK for one purpose (HKDF-SHA256
// with info as the purpose label), for MACs that must not be computable from
// the database alone: the audit chain, bypass-code hashes. Different labels
// give independent keys; the same KEK and label always give the same key.
func (s *Sealer) DeriveKey(info string) []byte {
	k, err := hkdf.Key(sha256.New, s.kek, nil, "bridge:"+info, 32)
	if err != nil { // only for lengths HKDF cannot produce; 32 is always fine
		panic("keys: HKDF: " + err.Error())
	}
	return k
}
