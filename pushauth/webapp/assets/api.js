// Calls of the device API (docs/device-protocol.md §5, §6): every request
// but the enrollment carries a fresh Device-Proof signed by the account's
// request key. Used by the page and by the service worker.

import { encode, utf8, sha256, randomB64 } from './b64.js';
import { sign } from './jose.js';

export const PATH_ENROLL = '/device/v1/enroll';
export const PATH_DEVICE = '/device/v1/device';
export const PATH_PUSH_KEYS = '/device/v1/push-keys';
export const PATH_PENDING = '/device/v1/challenges';
export const PATH_CHALLENGE = '/device/v1/challenges/';

// ApiError is an error answer of the bridge: status, the protocol's error
// code and, for 429, how many seconds to wait.
export class ApiError extends Error {
  constructor(status, code, description, retryAfter) {
    super(`${status} ${code}${description ? ': ' + description : ''}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
  // gone: the enrollment no longer exists on the bridge (§15).
  get gone() { return this.status === 401 && (this.code === 'unknown_device' || this.code === 'device_revoked'); }
}

// Seconds to add to this browser's clock for each bridge, learnt from a
// refused proof's Date header (§15).
const offsets = new Map();

export function now(baseURL) {
  return Math.floor(Date.now() / 1000) + (offsets.get(baseURL) || 0);
}

function adjustClock(baseURL, resp) {
  const d = Date.parse(resp.headers.get('Date') || '');
  if (Number.isNaN(d)) return false;
  const diff = Math.round((d - Date.now()) / 1000);
  if (Math.abs(diff - (offsets.get(baseURL) || 0)) <= 30) return false;
  offsets.set(baseURL, diff);
  return true;
}

async function apiError(resp) {
  let code = 'http_' + resp.status;
  let description = '';
  try {
    const e = await resp.json();
    if (typeof e.error === 'string') code = e.error;
    if (typeof e.error_description === 'string') description = e.error_description;
  } catch {
    // not JSON: the status says enough
  }
  const ra = parseInt(resp.headers.get('Retry-After') || '', 10);
  return new ApiError(resp.status, code, description, Number.isNaN(ra) ? 0 : ra);
}

// proof makes the Device-Proof of one request (§5).
export async function proof(acct, method, path, bodyText) {
  const claims = { jti: randomB64(16), htm: method, htu: acct.baseURL + path, iat: now(acct.baseURL) };
  if (bodyText !== undefined) claims.bh = encode(await sha256(utf8(bodyText)));
  return sign(acct.key, { alg: 'ES256', kid: acct.deviceId, typ: 'bridge-proof+jwt' }, claims);
}

// call makes a signed request and returns the decoded JSON answer (null
// for 204). A refused proof whose answer shows a clock difference is
// retried once with the corrected clock.
export async function call(acct, method, path, { body, query = '', signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const bodyText = body === undefined ? undefined : JSON.stringify(body);
    const headers = { 'Device-Proof': await proof(acct, method, path, bodyText) };
    if (bodyText !== undefined) headers['Content-Type'] = 'application/json';
    const resp = await fetch(acct.baseURL + path + query, {
      method, headers, body: bodyText, signal,
      redirect: 'error', cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    if (resp.ok) return resp.status === 204 ? null : resp.json();
    const err = await apiError(resp);
    if (attempt === 0 && err.status === 401 && err.code === 'invalid_proof' && adjustClock(acct.baseURL, resp)) continue;
    throw err;
  }
}

// enroll posts the enrollment JWS (§4.2).
export async function enroll(baseURL, jws) {
  const resp = await fetch(baseURL + PATH_ENROLL, {
    method: 'POST', headers: { 'Content-Type': 'application/jose' }, body: jws,
    redirect: 'error', cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
  });
  if (resp.status === 201) return resp.json();
  throw await apiError(resp);
}
