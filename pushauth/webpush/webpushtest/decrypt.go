package webpushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Decrypt opens an aes128gcm push message body (RFC 8188 framing, RFC 8291
// keys) as the browser does, with the subscription's private ECDH key and
// authentication secret. It accepts exactly one record, as Web Push
// messages are, and returns the plaintext without its delimiter and
// padding.
func Decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	const hdr = 16 + 4 + 1
	if len(body) < hdr {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if idlen != 65 {
		return nil, fmt.Errorf("keyid is %d bytes, want the 65-byte application server key", idlen)
	}
	if len(body) < hdr+idlen {
		return nil, errors.New("body shorter than its keyid")
	}
	asRaw, ct := body[hdr:hdr+idlen], body[hdr+idlen:]
	if rs < 18 {
		return nil, fmt.Errorf("record size %d is below 18", rs)
	}
	if len(ct) < 17 {
		return nil, errors.New("no record")
	}
	if uint64(len(ct)) > uint64(rs) {
		return nil, fmt.Errorf("%d bytes of records with record size %d: Web Push messages have one record", len(ct), rs)
	}
	if len(auth) != 16 {
		return nil, errors.New("auth secret must be 16 bytes")
	}
	asPub, err := ecdh.P256().NewPublicKey(asRaw)
	if err != nil {
		return nil, fmt.Errorf("keyid is not a P-256 point: %w", err)
	}
	secret, err := ua.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	info := "WebPush: info\x00" + string(ua.PublicKey().Bytes()) + string(asRaw)
	ikm, err := hkdf.Key(sha256.New, secret, auth, info, 32)
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
	pt, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, errors.New("record does not decrypt (wrong keys or altered)")
	}
	// The last record ends in 0x02 followed by zero padding.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 0x02 {
		return nil, errors.New("record lacks the last-record delimiter 0x02")
	}
	return pt[:i], nil
}
