// Web Push: the browser's push subscription, made with the bridge's VAPID
// key, is every account's push token (provider "webpush"): the JSON
// {"endpoint", "keys": {"p256dh", "auth"}, "vapid"} sent with
// PUT /device/v1/device.

import { encode, decode } from './b64.js';
import { call, PATH_DEVICE } from './api.js';
import { accounts, updateAccount } from './db.js';

export function supported() {
  return typeof Notification !== 'undefined' && 'serviceWorker' in navigator && typeof PushManager !== 'undefined';
}

// tokenOf is the push token of a subscription made with vapid (base64url
// of the applicationServerKey).
export function tokenOf(sub, vapid) {
  const j = sub.toJSON();
  return JSON.stringify({ endpoint: j.endpoint, keys: { p256dh: j.keys.p256dh, auth: j.keys.auth }, vapid });
}

// registerPushToken sends token (a push token as tokenOf makes it) to the
// account's bridge and remembers it.
export async function registerPushToken(acct, token) {
  await call(acct, 'PUT', PATH_DEVICE, { body: { push_provider: 'webpush', push_token: token } });
  return updateAccount(acct.id, (a) => { a.pushToken = token; });
}

function sameKey(buf, vapid) {
  return buf && encode(buf) === vapid;
}

// subscription returns the subscription for config's VAPID key, making
// it when there is none (the browser may have dropped it) and replacing
// one made with an older key.
async function subscription(config) {
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (sub && !sameKey(sub.options.applicationServerKey, config.vapid_key)) {
    await sub.unsubscribe(); // the bridge's VAPID key changed
    sub = null;
  }
  if (!sub) {
    sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: decode(config.vapid_key) });
  }
  return sub;
}

// turnOn asks for permission, subscribes and registers the subscription
// with every account. It returns the permission state.
export async function turnOn(config) {
  const perm = await Notification.requestPermission();
  if (perm !== 'granted') return perm;
  await sync(config);
  return perm;
}

// sync, at every start and after an enrollment: when notifications are
// allowed, make sure each account's bridge has the current subscription
// (the bridge clears a stale mark on every PUT, §6.4). Failures of one
// account do not stop the others; the first error is thrown at the end.
export async function sync(config) {
  if (!supported() || !config.vapid_key || Notification.permission !== 'granted') return;
  const sub = await subscription(config);
  const token = tokenOf(sub, config.vapid_key);
  let first;
  for (const a of await accounts()) {
    try {
      await registerPushToken(a, token);
    } catch (e) {
      first = first || e;
    }
  }
  if (first) throw first;
}
