// base64url without padding (RFC 4648 §5), the encoding of every byte
// string of the device protocol, and UTF-8 helpers.

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function utf8(s) { return enc.encode(s); }
export function fromUTF8(bytes) { return dec.decode(bytes); }

export function encode(bytes) {
  const b = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const b64url = /^[A-Za-z0-9_-]*$/;

// decode refuses anything but unpadded base64url.
export function decode(s) {
  if (typeof s !== 'string' || !b64url.test(s) || s.length % 4 === 1) {
    throw new Error('not base64url');
  }
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function isB64url(s, min, max) {
  return typeof s === 'string' && s.length >= min && s.length <= max && b64url.test(s);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

export function randomB64(n) {
  return encode(crypto.getRandomValues(new Uint8Array(n)));
}
