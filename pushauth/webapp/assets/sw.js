// The service worker: the offline shell, and pushes while the page is
// closed. A push ({"t":"challenge","cid"}) is only a wake-up: the worker
// fetches the challenge with the account's request key, verifies it, and
// shows a notification that names the application only (nothing personal
// on a lock screen). Tapping it opens the challenge in the app.

import { accounts } from './db.js';
import { fetchChallenge } from './challenges.js';
import { isB64url } from './b64.js';

const VERSION = '__VERSION__';
const CACHE = 'bridge-app-' + VERSION;
const SHELL = [
  '/app/', '/app/app.js', '/app/api.js', '/app/b64.js', '/app/challenges.js', '/app/db.js',
  '/app/enroll.js', '/app/jose.js', '/app/push.js', '/app/strings.js', '/app/support.js', '/app/style.css',
  '/app/strings.json', '/app/config.json', '/app/manifest.webmanifest',
  '/app/icons/icon-192.png', '/app/icons/icon-512.png', '/app/icons/apple-touch-icon.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL.map((u) => new Request(u, { cache: 'no-cache', credentials: 'omit' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith('bridge-app-') && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

// The shell comes from the network when it can (a new bridge version is
// seen at once), else from the cache, so that the app opens offline and
// shows its accounts. Nothing else is cached: the device API always goes
// to the bridge.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const path = url.pathname;
  if (!SHELL.includes(path)) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const resp = await fetch(req);
      if (resp.ok) await cache.put(path, resp.clone());
      return resp;
    } catch (e) {
      const hit = await cache.match(path);
      if (hit) return hit;
      throw e;
    }
  })());
});

async function strings() {
  try {
    const resp = await fetch('/app/strings.json', { credentials: 'omit' });
    if (resp.ok) return await resp.json();
  } catch {
    // offline: the cached copy
  }
  const hit = await (await caches.open(CACHE)).match('/app/strings.json');
  return hit ? hit.json() : {};
}

const ICON = '/app/icons/icon-192.png';

async function onPush(event) {
  let msg = null;
  try {
    msg = event.data ? event.data.json() : null;
  } catch {
    msg = null;
  }
  const s = await strings();
  const title = s['app.notify_title'] || 'app.notify_title';
  const cid = msg && msg.t === 'challenge' && isB64url(msg.cid, 1, 64) ? msg.cid : '';
  if (cid) {
    for (const a of await accounts()) {
      try {
        const r = await fetchChallenge(a, cid);
        if (r) {
          return self.registration.showNotification(title, {
            body: r.claims.app_name || r.claims.app, tag: cid, icon: ICON, data: { cid }, requireInteraction: true,
          });
        }
      } catch (e) {
        console.warn('push: fetching the challenge failed:', e && e.message);
      }
    }
  }
  // Nothing verified: a notification that says nothing but "look".
  // (Browsers require one for every push.)
  return self.registration.showNotification(title, {
    body: s['app.notify_generic'] || 'app.notify_generic', tag: cid || 'bridge', icon: ICON, data: { cid },
  });
}

self.addEventListener('push', (event) => event.waitUntil(onPush(event)));

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const cid = event.notification.data && event.notification.data.cid;
  event.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of wins) {
      if (new URL(w.url).pathname.startsWith('/app/')) {
        await w.focus();
        if (cid) w.postMessage({ t: 'open', cid });
        return;
      }
    }
    await self.clients.openWindow('/app/' + (cid ? '#c=' + cid : ''));
  })());
});
