// Challenges (docs/device-protocol.md §7, §8): every challenge is verified
// against the account's trusted push keys before anything of it is shown,
// and answers are signed by the passkey (a WebAuthn assertion over the
// canonical answer) or, for a software key, by the request key (JWS).

import { encode, decode, utf8, sha256, isB64url } from './b64.js';
import { parse, sign, verifyEd25519, endorse } from './jose.js';
import { call, now, PATH_PUSH_KEYS, PATH_CHALLENGE } from './api.js';
import { updateAccount } from './db.js';

// The clock difference allowed on a challenge's expiry (§7.2).
const SKEW = 30;
// A kid the account does not trust is looked up at most once a minute.
const KID_REFRESH_MS = 60 * 1000;
// The push keys are refreshed at start when the last refresh is older
// than this (§14), so that a rotation is learnt before a challenge
// signed with the new key arrives.
export const PUSH_KEYS_MAX_AGE_MS = 24 * 3600 * 1000;
const lastKidFetch = new Map();

// refreshPushKeys fetches the bridge's push keys and trusts those that an
// endorsement by a trusted key vouches for (§14); it returns the account
// as stored.
export async function refreshPushKeys(acct) {
  const r = await call(acct, 'GET', PATH_PUSH_KEYS);
  const trusted = { ...acct.trusted };
  await endorse(trusted, r && r.endorsements);
  const at = Date.now();
  return (await updateAccount(acct.id, (a) => { a.trusted = { ...a.trusted, ...trusted }; a.keysRefreshedAt = at; })) || acct;
}

// trustedKey is the x of a trusted push key of acct, or undefined.
function trustedKey(acct, kid) {
  return Object.hasOwn(acct.trusted, kid) ? acct.trusted[kid] : undefined;
}

function shortString(v) { return v === undefined || (typeof v === 'string' && v.length <= 512); }

// ChallengeError is a challenge that must not be shown.
export class ChallengeError extends Error {}

// verifyChallenge checks a ChallengeItem of acct (§7.2) and returns
// {acct, claims}; wantID, when given, is the id the app asked for.
export async function verifyChallenge(acct, item, wantID) {
  if (!item || typeof item.challenge !== 'string' || !isB64url(item.id, 1, 64)) {
    throw new ChallengeError('malformed challenge item');
  }
  let p;
  try {
    p = parse(item.challenge, 'bridge-challenge+jwt', 'EdDSA');
  } catch (e) {
    throw new ChallengeError('challenge does not parse: ' + e.message);
  }
  const kid = p.header.kid;
  if (typeof kid !== 'string') throw new ChallengeError('challenge has no kid');
  let x = trustedKey(acct, kid);
  if (!x) {
    const k = acct.id + ' ' + kid;
    if (Date.now() - (lastKidFetch.get(k) || 0) > KID_REFRESH_MS) {
      lastKidFetch.set(k, Date.now());
      acct = await refreshPushKeys(acct);
      x = trustedKey(acct, kid);
    }
  }
  if (!x) throw new ChallengeError('challenge signed by a key this account does not trust');
  if (!(await verifyEd25519(p, x))) throw new ChallengeError('bad challenge signature');
  const c = p.claims;
  if (c.iss !== acct.baseURL) throw new ChallengeError('challenge of another bridge');
  if (c.sub !== acct.user) throw new ChallengeError('challenge of another user');
  if (c.cid !== item.id || (wantID !== undefined && c.cid !== wantID)) throw new ChallengeError('challenge id mismatch');
  if (!Number.isInteger(c.exp) || !Number.isInteger(c.iat)) throw new ChallengeError('challenge times missing');
  if (c.exp + SKEW < now(acct.baseURL)) throw new ChallengeError('challenge expired');
  const nm = c.nm === undefined ? 0 : c.nm;
  if (!Number.isInteger(nm) || nm < 0 || nm > 16) throw new ChallengeError('bad number length');
  for (const f of ['app', 'app_name', 'channel', 'ip', 'ua', 'loc', 'keys']) {
    if (!shortString(c[f])) throw new ChallengeError('bad claim ' + f);
  }
  return { acct, claims: { ...c, nm } };
}

// fetchChallenge gets one challenge by id (after a push, or a tap on a
// notification) and verifies it; null when this account does not have it
// or it is no longer pending.
export async function fetchChallenge(acct, cid) {
  let item;
  try {
    item = await call(acct, 'GET', PATH_CHALLENGE + cid);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
  if (!item || item.state !== 'pending') return null;
  const v = await verifyChallenge(acct, item, cid);
  return { acct: v.acct, item, claims: v.claims };
}

// answerChallenge answers a verified challenge; decision is approve, deny
// or fraud, number what the user typed ("" for none). It returns the
// bridge's AnswerResponse ({state, fraud_reported?}).
export async function answerChallenge(acct, item, decision, number) {
  const cid = item.id;
  const chash = encode(await sha256(utf8(item.challenge)));
  const iat = now(acct.baseURL);
  let body;
  if (acct.credentialId) {
    const canonical = `bridge-answer/1\n${cid}\n${chash}\n${decision}\n${number}\n${iat}`;
    const cred = await navigator.credentials.get({
      publicKey: {
        challenge: await sha256(utf8(canonical)),
        rpId: acct.rpId,
        allowCredentials: [{ type: 'public-key', id: decode(acct.credentialId) }],
        userVerification: 'required',
        timeout: 120000,
      },
    });
    const r = cred.response;
    const w = {
      cid, chash, decision, iat,
      credential_id: encode(cred.rawId),
      client_data_json: encode(r.clientDataJSON),
      authenticator_data: encode(r.authenticatorData),
      signature: encode(r.signature),
    };
    if (number) w.number = number;
    if (r.userHandle && r.userHandle.byteLength) w.user_handle = encode(r.userHandle);
    body = { webauthn: w };
  } else {
    const claims = { cid, chash, decision, iat };
    if (number) claims.number = number;
    body = { answer: await sign(acct.key, { alg: 'ES256', kid: acct.deviceId, typ: 'bridge-answer+jwt' }, claims) };
  }
  return call(acct, 'POST', PATH_CHALLENGE + cid + '/answer', { body });
}
