// What the app needs of the browser, checked at start and again before an
// enrollment: an older browser is told so before the activation code is
// spent, instead of enrolling and then failing on every challenge.
//
// The needs: WebCrypto with ECDSA P-256 (the request key) and Ed25519
// verification (the bridge's push keys: Chrome 137, Safari 17, Firefox
// 129), IndexedDB (the accounts), Object.hasOwn. The passkey and Web Push
// are optional (the app falls back to a software key, to long-poll).

import { decode, utf8 } from './b64.js';

// RFC 8032 §7.1, test 1: a signature of the empty message.
const ED_X = '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo';
const ED_SIG = '5VZDAMNgrHKQhuLMgG6CioSHfx645dl02HPgZSJJAVVfuIIVkKM7rMYeOXAc-bRr0lv18FlbviRlUUFDjnoQCw';

async function ed25519() {
  const key = await crypto.subtle.importKey('raw', decode(ED_X), { name: 'Ed25519' }, false, ['verify']);
  const good = await crypto.subtle.verify({ name: 'Ed25519' }, key, decode(ED_SIG), new Uint8Array(0));
  const bad = await crypto.subtle.verify({ name: 'Ed25519' }, key, decode(ED_SIG), utf8('x'));
  return good === true && bad === false;
}

async function ecdsa() {
  const k = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, k.privateKey, utf8('x'));
  return sig.byteLength === 64;
}

// missing resolves to the first thing this browser lacks ('' when none):
// a short name for the console, the page shows one message for all.
async function check() {
  if (typeof Object.hasOwn !== 'function') return 'Object.hasOwn';
  if (typeof indexedDB === 'undefined') return 'IndexedDB';
  if (!globalThis.isSecureContext || !globalThis.crypto || !crypto.subtle) return 'WebCrypto (secure context)';
  try {
    if (!(await ecdsa())) return 'ECDSA P-256';
  } catch {
    return 'ECDSA P-256';
  }
  try {
    if (!(await ed25519())) return 'Ed25519';
  } catch {
    return 'Ed25519';
  }
  return '';
}

let result;
export function missing() {
  if (!result) result = check().catch((e) => String(e && e.name || e));
  return result;
}
