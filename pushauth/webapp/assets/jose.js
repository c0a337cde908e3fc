// The JWS of the device protocol (docs/device-protocol.md §3): ES256 with
// the request key (WebCrypto's ECDSA signature is already R‖S), Ed25519
// verification of the bridge's push key, RFC 7638 thumbprints, and
// push-key endorsements (§14).

import { encode, decode, utf8, fromUTF8, sha256 } from './b64.js';

export const MAX_JWS = 8192;

// makeRequestKey makes a P-256 key whose private half can never leave
// the browser (extractable: false); it is kept in IndexedDB as it is.
export async function makeRequestKey() {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
}

// publicJWK is the public key as the protocol's JWK: only kty, crv, x, y.
export async function publicJWK(publicKey) {
  const j = await crypto.subtle.exportKey('jwk', publicKey);
  return { kty: 'EC', crv: 'P-256', x: j.x, y: j.y };
}

// thumbprint is the RFC 7638 SHA-256 thumbprint, base64url: the members
// required for the key type, in lexicographic order, no whitespace.
export async function thumbprint(jwk) {
  let canonical;
  if (jwk.kty === 'EC') {
    canonical = JSON.stringify({ crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y });
  } else if (jwk.kty === 'OKP') {
    canonical = JSON.stringify({ crv: jwk.crv, kty: 'OKP', x: jwk.x });
  } else {
    throw new Error('unsupported key type');
  }
  return encode(await sha256(utf8(canonical)));
}

// sign makes a compact JWS with the request key.
export async function sign(privateKey, header, claims) {
  const input = encode(utf8(JSON.stringify(header))) + '.' + encode(utf8(JSON.stringify(claims)));
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, utf8(input));
  return input + '.' + encode(sig);
}

// parse splits a compact JWS of type typ signed with alg, without verifying
// it; it refuses what the protocol refuses (size, typ, alg, crit).
export function parse(compact, typ, alg) {
  if (typeof compact !== 'string' || compact.length === 0 || compact.length > MAX_JWS) {
    throw new Error('bad JWS size');
  }
  const parts = compact.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  const header = JSON.parse(fromUTF8(decode(parts[0])));
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new Error('bad header');
  if (header.typ !== typ) throw new Error('wrong typ');
  if (header.alg !== alg) throw new Error('wrong alg');
  if ('crit' in header || 'b64' in header || 'jku' in header || 'x5u' in header || 'jwk' in header) throw new Error('unexpected header');
  const claims = JSON.parse(fromUTF8(decode(parts[1])));
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new Error('bad claims');
  return { header, claims, input: utf8(parts[0] + '.' + parts[1]), signature: decode(parts[2]) };
}

// pushKeyX checks a push key JWK (Ed25519 public, alg absent or EdDSA) and
// returns its x.
export function pushKeyX(jwk) {
  if (!jwk || typeof jwk !== 'object' || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' ||
      (jwk.alg !== undefined && jwk.alg !== 'EdDSA') || 'd' in jwk || typeof jwk.x !== 'string') {
    throw new Error('not an Ed25519 public key');
  }
  if (decode(jwk.x).length !== 32) throw new Error('bad Ed25519 key length');
  return jwk.x;
}

// verifyEd25519 checks a parsed JWS against an Ed25519 public key (x).
export async function verifyEd25519(parsed, x) {
  const key = await crypto.subtle.importKey('raw', decode(x), { name: 'Ed25519' }, false, ['verify']);
  if (parsed.signature.length !== 64) return false;
  return crypto.subtle.verify({ name: 'Ed25519' }, key, parsed.signature, parsed.input);
}

// endorse adds to trusted (thumbprint → x) every key that an endorsement
// by a key already trusted vouches for, following chains (§14). Invalid
// endorsements are skipped. It returns whether anything was added.
export async function endorse(trusted, endorsements) {
  if (!Array.isArray(endorsements)) return false;
  const list = endorsements.slice(0, 64);
  let added = false;
  for (let grew = true; grew;) {
    grew = false;
    for (const e of list) {
      let p;
      try {
        p = parse(e, 'bridge-push-key+jwt', 'EdDSA');
      } catch {
        continue;
      }
      // Object.hasOwn: a kid such as __proto__ must not find Object's own.
      if (typeof p.header.kid !== 'string' || !Object.hasOwn(trusted, p.header.kid)) continue;
      const by = trusted[p.header.kid];
      try {
        if (!(await verifyEd25519(p, by))) continue;
        const x = pushKeyX(p.claims.jwk);
        const tp = await thumbprint({ kty: 'OKP', crv: 'Ed25519', x });
        if (!Object.hasOwn(trusted, tp)) {
          trusted[tp] = x;
          grew = added = true;
        }
      } catch {
        continue;
      }
    }
  }
  return added;
}
