package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// RFC 8188 / RFC 8291 constants.
const (
	recordSize = 4096 // rs in the header: one record holds what a push service takes
	saltLen    = 16
	authLen    = 16
	pointLen   = 65 // uncompressed P-256 point
	headerLen  = saltLen + 4 + 1 + pointLen
	tagLen     = 16
	// MaxBody is the largest push message body push services must accept
	// (RFC 8030 §7.2: 4096 octets of payload).
	MaxBody = 4096
	// padTo is the record plaintext length (payload, delimiter, zero
	// padding) a push is padded to, so its size does not tell the push
	// service anything about the challenge id.
	padTo = 128
)

// encrypt seals plaintext for the user agent whose ECDH public key is uaPub
// and whose authentication secret is auth (RFC 8291 §3.4), as one
// aes128gcm record (RFC 8188) with rs = 4096, padded with zeros so the
// record's plaintext is at least padLen bytes. as is the application
// server's ephemeral ECDH key and salt the 16 random bytes of the header:
// both are fresh for each message, and are arguments so RFC 8291's
// Appendix A can be reproduced.
func encrypt(plaintext []byte, uaPub *ecdh.PublicKey, auth []byte, as *ecdh.PrivateKey, salt []byte, padLen int) ([]byte, error) {
	if len(auth) != authLen || len(salt) != saltLen {
		return nil, errors.New("webpush: auth secret and salt must be 16 bytes")
	}
	record := len(plaintext) + 1
	if record < padLen {
		record = padLen
	}
	if headerLen+record+tagLen > MaxBody {
		return nil, fmt.Errorf("webpush: payload of %d bytes does not fit in one push", len(plaintext))
	}
	secret, err := as.ECDH(uaPub)
	if err != nil {
		return nil, fmt.Errorf("webpush: ECDH: %w", err)
	}
	asPub := as.PublicKey().Bytes()
	// key_info = "WebPush: info" || 0x00 || ua_public || as_public
	keyInfo := "WebPush: info\x00" + string(uaPub.Bytes()) + string(asPub)
	ikm, err := hkdf.Key(sha256.New, secret, auth, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}

	out := make([]byte, headerLen, headerLen+record+tagLen)
	copy(out, salt)
	binary.BigEndian.PutUint32(out[saltLen:], recordSize)
	out[saltLen+4] = pointLen
	copy(out[saltLen+5:], asPub)
	// The only (so last) record: plaintext, delimiter 0x02, zeros.
	pt := make([]byte, record)
	copy(pt, plaintext)
	pt[len(plaintext)] = 0x02
	return gcm.Seal(out, nonce, pt, nil), nil
}

// seal is encrypt with a fresh ephemeral key and salt.
func seal(plaintext []byte, uaPub *ecdh.PublicKey, auth []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encrypt(plaintext, uaPub, auth, as, salt, padTo)
}
