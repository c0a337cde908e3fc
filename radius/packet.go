package radius

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"
)

// maxPacket is the largest RADIUS packet (RFC 2865 §3); a datagram longer
// than this is dropped, not truncated.
const maxPacket = radius.MaxPacketLength

// maLen is the length of a Message-Authenticator value.
const maLen = md5.Size

// wire is what scan learns about a raw packet before it is trusted.
type wire struct {
	code   radius.Code
	length int
	// maOffset is where the Message-Authenticator's value starts in the
	// packet, or 0 when it has none.
	maOffset   int
	proxyState bool
	eap        bool
}

// Problems scan reports. They are reasons for dropping a packet, named in
// the drop counter and the debug log.
var (
	errShort      = errors.New("shorter than a RADIUS header")
	errLength     = errors.New("length field disagrees with the datagram")
	errAttribute  = errors.New("malformed attribute")
	errMALength   = errors.New("Message-Authenticator is not 16 bytes")
	errMATwice    = errors.New("more than one Message-Authenticator")
	errBadMA      = errors.New("Message-Authenticator does not verify (wrong shared secret?)")
	errBadRequest = errors.New("request authenticator does not verify (wrong shared secret?)")
)

// scan checks the layout of a datagram: header, length and attributes, each
// within the packet. It does not allocate. The length field may be shorter
// than the datagram (RFC 2865 §3: octets beyond it are padding and ignored)
// but not longer.
func scan(b []byte) (wire, error) {
	if len(b) < 20 {
		return wire{}, errShort
	}
	w := wire{code: radius.Code(b[0]), length: int(binary.BigEndian.Uint16(b[2:4]))}
	if w.length < 20 || w.length > len(b) || w.length > maxPacket {
		return wire{}, errLength
	}
	for i := 20; i < w.length; {
		if w.length-i < 2 {
			return wire{}, errAttribute
		}
		t, l := radius.Type(b[i]), int(b[i+1])
		if l < 2 || i+l > w.length {
			return wire{}, errAttribute
		}
		switch t {
		case rfc2869.MessageAuthenticator_Type:
			if l-2 != maLen {
				return wire{}, errMALength
			}
			if w.maOffset != 0 {
				return wire{}, errMATwice
			}
			w.maOffset = i + 2
		case rfc2865.ProxyState_Type:
			w.proxyState = true
		case rfc2869.EAPMessage_Type:
			w.eap = true
		}
		i += l
	}
	return w, nil
}

// messageAuthenticator computes HMAC-MD5(secret, packet) over b with the
// Message-Authenticator value at off taken as zero and, with zeroAuth, the
// authenticator field too (Accounting-Request, RFC 5080 §2.2.2). b is not
// changed.
func messageAuthenticator(b []byte, off int, secret []byte, zeroAuth bool) [maLen]byte {
	var zero [maLen]byte
	mac := hmac.New(md5.New, secret)
	mac.Write(b[:4])
	if zeroAuth {
		mac.Write(zero[:])
	} else {
		mac.Write(b[4:20])
	}
	mac.Write(b[20:off])
	mac.Write(zero[:])
	mac.Write(b[off+maLen:])
	var sum [maLen]byte
	mac.Sum(sum[:0])
	return sum
}

// verifyMA reports whether the Message-Authenticator at off is right for
// secret, in constant time.
func verifyMA(b []byte, off int, secret []byte, zeroAuth bool) bool {
	want := messageAuthenticator(b, off, secret, zeroAuth)
	return subtle.ConstantTimeCompare(want[:], b[off:off+maLen]) == 1
}

// verifyAccountingAuthenticator checks an Accounting-Request's request
// authenticator: MD5(code, id, length, 16 zero octets, attributes, secret)
// (RFC 2866 §3). layeh's IsAuthenticRequest computes the same but compares
// with bytes.Equal; this compares in constant time.
func verifyAccountingAuthenticator(b, secret []byte) bool {
	var zero [16]byte
	h := md5.New()
	h.Write(b[:4])
	h.Write(zero[:])
	h.Write(b[20:])
	h.Write(secret)
	var sum [md5.Size]byte
	h.Sum(sum[:0])
	return subtle.ConstantTimeCompare(sum[:], b[4:20]) == 1
}

// encodedLen is the length resp will have on the wire as an answer to req:
// its attributes, a Message-Authenticator and req's Proxy-State copies.
func encodedLen(resp, req *radius.Packet) int {
	n := 20 + 2 + maLen
	for _, a := range resp.Attributes {
		if a.Type != rfc2869.MessageAuthenticator_Type {
			n += 2 + len(a.Attribute)
		}
	}
	for _, a := range req.Attributes {
		if a.Type == rfc2865.ProxyState_Type {
			n += 2 + len(a.Attribute)
		}
	}
	return n
}

// encodeResponse encodes a response to req: a Message-Authenticator first,
// then the other attributes, then the response authenticator over it all.
// Any Message-Authenticator in resp.Attributes is dropped. The
// Message-Authenticator is computed over the packet with the request
// authenticator in place (RFC 3579 §3.2), except in an Accounting-Response
// to an Accounting-Request, where that field is zero, as FreeRADIUS
// computes and checks it.
func encodeResponse(resp, req *radius.Packet, secret []byte) ([]byte, error) {
	reqAuth := req.Authenticator
	n := 20 + 2 + maLen
	for _, a := range resp.Attributes {
		if a.Type == rfc2869.MessageAuthenticator_Type {
			continue
		}
		if len(a.Attribute) > 253 || a.Type < 0 || a.Type > 255 {
			return nil, fmt.Errorf("radius: attribute %d is too long or out of range", a.Type)
		}
		n += 2 + len(a.Attribute)
	}
	if n > maxPacket {
		return nil, fmt.Errorf("radius: response would be %d bytes, over %d", n, maxPacket)
	}
	b := make([]byte, n)
	b[0] = byte(resp.Code)
	b[1] = resp.Identifier
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	copy(b[4:20], reqAuth[:])
	b[20], b[21] = byte(rfc2869.MessageAuthenticator_Type), 2+maLen
	i := 22 + maLen
	for _, a := range resp.Attributes {
		if a.Type == rfc2869.MessageAuthenticator_Type {
			continue
		}
		b[i], b[i+1] = byte(a.Type), byte(2+len(a.Attribute))
		copy(b[i+2:], a.Attribute)
		i += 2 + len(a.Attribute)
	}
	zeroAuth := resp.Code == radius.CodeAccountingResponse && req.Code == radius.CodeAccountingRequest
	ma := messageAuthenticator(b, 22, secret, zeroAuth)
	copy(b[22:], ma[:])
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	h.Sum(b[4:4:20])
	return b, nil
}
