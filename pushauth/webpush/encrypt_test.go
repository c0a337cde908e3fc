package webpush

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"testing"

	"github.com/bridge-idp/bridge/pushauth/webpush/webpushtest"
)

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return b
}

// RFC 8291 Appendix A, line breaks removed.
const (
	rfcPlaintext = "V2hlbiBJIGdyb3cgdXAsIEkgd2FudCB0byBiZSBhIHdhdGVybWVsb24"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcASPublic  = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcMessage   = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

// The RFC's example keys, salt and plaintext give its exact message, and
// the browser's side (webpushtest.Decrypt) opens it.
func TestRFC8291AppendixA(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(as.PublicKey().Bytes(), b64(t, rfcASPublic)) {
		t.Fatal("the application server's public key is not the RFC's")
	}
	ua, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	uaPub, err := ecdh.P256().NewPublicKey(b64(t, rfcUAPublic))
	if err != nil {
		t.Fatal(err)
	}
	got, err := encrypt(b64(t, rfcPlaintext), uaPub, b64(t, rfcAuth), as, b64(t, rfcSalt), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := b64(t, rfcMessage); !bytes.Equal(got, want) {
		t.Errorf("encrypt:\n got %s\nwant %s", base64.RawURLEncoding.EncodeToString(got), rfcMessage)
	}
	pt, err := webpushtest.Decrypt(b64(t, rfcMessage), ua, b64(t, rfcAuth))
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != "When I grow up, I want to be a watermelon" {
		t.Errorf("decrypted %q", pt)
	}
	// One bit changed anywhere in the record: it does not open.
	bad := b64(t, rfcMessage)
	bad[len(bad)-20] ^= 1
	if _, err := webpushtest.Decrypt(bad, ua, b64(t, rfcAuth)); err == nil {
		t.Error("an altered record decrypted")
	}
}

// seal pads every push to the same size and uses a fresh key and salt.
func TestSealPadsAndIsFresh(t *testing.T) {
	ua, err := ecdh.P256().GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	auth := bytes.Repeat([]byte{7}, 16)
	short, err := seal([]byte(`{"t":"challenge","cid":"a"}`), ua.PublicKey(), auth)
	if err != nil {
		t.Fatal(err)
	}
	long, err := seal([]byte(`{"t":"challenge","cid":"`+string(bytes.Repeat([]byte("x"), 64))+`"}`), ua.PublicKey(), auth)
	if err != nil {
		t.Fatal(err)
	}
	if want := headerLen + padTo + tagLen; len(short) != want || len(long) != want {
		t.Errorf("sealed sizes %d and %d, want both %d", len(short), len(long), want)
	}
	if bytes.Equal(short[:saltLen], long[:saltLen]) || bytes.Equal(short[21:86], long[21:86]) {
		t.Error("two pushes share a salt or an ephemeral key")
	}
	pt, err := webpushtest.Decrypt(short, ua, auth)
	if err != nil || string(pt) != `{"t":"challenge","cid":"a"}` {
		t.Errorf("Decrypt = %q, %v", pt, err)
	}
	if _, err := seal(bytes.Repeat([]byte("x"), MaxBody), ua.PublicKey(), auth); err == nil {
		t.Error("a payload too large for one push was sealed")
	}
}
