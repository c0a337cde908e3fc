// Enrollment (docs/device-protocol.md §4): the activation link, the
// request key, the passkey, POST /device/v1/enroll and pinning the push
// key.

import { encode, utf8, sha256, isB64url } from './b64.js';
import { makeRequestKey, publicJWK, thumbprint, sign, pushKeyX, endorse } from './jose.js';
import { enroll as postEnroll, now, PATH_ENROLL } from './api.js';
import { accountID, putAccount } from './db.js';

export const APP_VERSION = 'web-1';
const MAX_LINK = 2048;
const codeRE = /^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}$/;

// LinkError is a link the app refuses; key names the string to show.
export class LinkError extends Error {
  constructor(key, detail) {
    super(detail || key);
    this.key = key;
  }
}

export function trimSlash(u) { return u.endsWith('/') ? u.slice(0, -1) : u; }

// parseLink reads an activation link for the app: the whole link
// (<base URL>/app/#enroll?v=1&url=…&code=…&pk=…&user=…) or only its
// fragment, checked as §4.1 says; the link's url must be this app's own
// base URL. It returns {url, code, pk, user, text (the whole link, for
// copying)}.
export function parseLink(text, baseURL) {
  const s = String(text || '').trim();
  if (s.length === 0 || s.length > MAX_LINK) throw new LinkError('app.link_invalid', 'length');
  const at = s.indexOf('#enroll?');
  let query;
  if (at >= 0) query = s.slice(at + '#enroll?'.length);
  else if (s.startsWith('enroll?')) query = s.slice('enroll?'.length);
  else throw new LinkError('app.link_invalid', 'not an enrollment link');
  const p = new URLSearchParams(query);
  if (p.get('v') !== '1') throw new LinkError('app.link_invalid', 'version');
  const raw = p.get('url') || '';
  let u;
  try {
    u = new URL(raw);
  } catch {
    throw new LinkError('app.link_invalid', 'url');
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || !u.host || u.username || u.password ||
      raw.includes('?') || raw.includes('#')) {
    throw new LinkError('app.link_invalid', 'url form');
  }
  if (p.has('tls') && u.protocol === 'http:') throw new LinkError('app.link_invalid', 'tls pin on http');
  const code = p.get('code') || '';
  const pk = p.get('pk') || '';
  const user = p.get('user') || '';
  if (!codeRE.test(code)) throw new LinkError('app.link_invalid', 'code');
  if (!isB64url(pk, 43, 43)) throw new LinkError('app.link_invalid', 'pk');
  if (user.length === 0 || user.length > 256) throw new LinkError('app.link_invalid', 'user');
  const url = trimSlash(raw);
  if (url !== trimSlash(baseURL)) throw new LinkError('app.link_other_bridge', url);
  // A TLS pin cannot be checked from a page; the browser's certificate
  // checks apply.
  return { url, code, pk, user, text: url + '/app/#enroll?' + query };
}

// passkeyPossible says whether this browser can make a platform passkey
// for this bridge.
export async function passkeyPossible(config) {
  if (!config.rp_id || typeof PublicKeyCredential === 'undefined' || !navigator.credentials) return false;
  try {
    return await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable();
  } catch {
    return false;
  }
}

// enrollChallenge is the WebAuthn challenge of the registration:
// SHA-256("bridge-webauthn-enroll\n" + act + "\n" + thumbprint).
export function enrollChallenge(act, thumb) {
  return sha256(utf8('bridge-webauthn-enroll\n' + act + '\n' + thumb));
}

async function createPasskey(config, link, thumb) {
  const cred = await navigator.credentials.create({
    publicKey: {
      rp: { id: config.rp_id, name: config.name },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name: link.user, displayName: link.user },
      challenge: await enrollChallenge(link.code, thumb),
      pubKeyCredParams: [
        { type: 'public-key', alg: -7 },
        { type: 'public-key', alg: -8 },
        { type: 'public-key', alg: -257 },
      ],
      authenticatorSelection: { authenticatorAttachment: 'platform', residentKey: 'preferred', userVerification: 'required' },
      attestation: config.attestation === 'direct' ? 'direct' : 'none',
      timeout: 120000,
    },
  });
  const r = cred.response;
  return {
    id: encode(cred.rawId),
    client_data_json: encode(r.clientDataJSON),
    attestation_object: encode(r.attestationObject),
    transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
  };
}

// platformName names the browser's system for the device's name.
export function platformName() {
  const d = navigator.userAgentData && navigator.userAgentData.platform;
  if (d) return d;
  const ua = navigator.userAgent;
  if (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1) return 'iPadOS';
  for (const [re, name] of [[/iPhone|iPad|iPod/, 'iOS'], [/Android/, 'Android'], [/Mac OS X/, 'macOS'], [/Windows/, 'Windows'], [/Linux/, 'Linux']]) {
    if (re.test(ua)) return name;
  }
  return '';
}

// EnrollError is a failed enrollment; key names the string to show.
export class EnrollError extends Error {
  constructor(key, detail) {
    super(detail || key);
    this.key = key;
  }
}

// enroll enrolls this browser for link: with a passkey when passkey is
// true (errors of navigator.credentials.create are passed on as they
// are, so the page can offer the software key), else with the request
// key only. deviceName is the name the bridge shows. It stores and returns
// the account.
export async function enroll(config, link, passkey, deviceName) {
  const keys = await makeRequestKey();
  const jwk = await publicJWK(keys.publicKey);
  const thumb = await thumbprint(jwk);
  const webauthn = passkey ? await createPasskey(config, link, thumb) : undefined;
  const claims = {
    act: link.code,
    htu: link.url + PATH_ENROLL,
    iat: now(link.url),
    platform: 'web',
    app_version: APP_VERSION,
    posture: { hardware_key: Boolean(webauthn) },
  };
  if (deviceName) claims.name = deviceName.slice(0, 256);
  if (webauthn) claims.webauthn = webauthn;
  const jws = await sign(keys.privateKey, { alg: 'ES256', jwk, typ: 'bridge-enroll+jwt' }, claims);
  const resp = await postEnroll(link.url, jws);

  if (!resp || !isB64url(resp.device_id, 1, 64) || typeof resp.user !== 'string' || !resp.user) {
    throw new EnrollError('app.enroll_failed', 'malformed answer');
  }
  // Pin the push key named by pk: its thumbprint computed here (§4.3).
  const trusted = {};
  const list = resp.push_keys && Array.isArray(resp.push_keys.keys) ? resp.push_keys.keys : [];
  for (const k of list) {
    try {
      const x = pushKeyX(k);
      if ((await thumbprint({ kty: 'OKP', crv: 'Ed25519', x })) === link.pk) trusted[link.pk] = x;
    } catch {
      // not a push key: skip
    }
  }
  if (!trusted[link.pk]) throw new EnrollError('app.enroll_pin_failed', 'pk not among push_keys');
  await endorse(trusted, resp.endorsements);
  const acct = {
    id: accountID(link.url, resp.device_id),
    baseURL: link.url,
    deviceId: resp.device_id,
    user: resp.user,
    appName: config.name,
    key: keys.privateKey,
    jwk,
    credentialId: webauthn ? webauthn.id : '',
    rpId: webauthn ? config.rp_id : '',
    trusted,
    pinned: link.pk,
    pushToken: '',
    enrolledAt: Date.now(),
    keysRefreshedAt: Date.now(),
  };
  await putAccount(acct);
  return acct;
}
