// The app's storage: one IndexedDB database shared by the page and the
// service worker. "accounts" holds one record per enrollment (its request
// key as a non-extractable CryptoKey, which IndexedDB stores as it is);
// "meta" holds small values such as the push subscription in use.
//
// An account: {id, baseURL, deviceId, user, appName, key (CryptoKey,
// private), jwk (public), credentialId ("" for a software key),
// trusted ({thumbprint: x}), pinned (thumbprint), pushToken (what the
// bridge was last sent), enrolledAt (ms), keysRefreshedAt (ms, the last
// GET /device/v1/push-keys)}.

const NAME = 'bridge-app';
const VERSION = 1;

let opening;

function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(NAME, VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('accounts')) db.createObjectStore('accounts', { keyPath: 'id' });
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another context upgrading the schema: let it, reopen later.
        db.onversionchange = () => { db.close(); opening = undefined; };
        resolve(db);
      };
      req.onerror = () => { opening = undefined; reject(req.error); };
    });
  }
  return opening;
}

async function run(storeName, mode, fn) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, mode);
    const store = tx.objectStore(storeName);
    let result;
    const req = fn(store);
    if (req) req.onsuccess = () => { result = req.result; };
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

export function accountID(baseURL, deviceId) { return baseURL + ' ' + deviceId; }

export async function accounts() {
  const list = (await run('accounts', 'readonly', (s) => s.getAll())) || [];
  return list.sort((a, b) => a.enrolledAt - b.enrolledAt);
}

export function getAccount(id) { return run('accounts', 'readonly', (s) => s.get(id)); }
export function putAccount(a) { return run('accounts', 'readwrite', (s) => s.put(a)); }
export function deleteAccount(id) { return run('accounts', 'readwrite', (s) => s.delete(id)); }

// updateAccount changes one account in one transaction (a long-poll and a
// push-key refresh may both write it).
export async function updateAccount(id, change) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('accounts', 'readwrite');
    const store = tx.objectStore('accounts');
    let out;
    const req = store.get(id);
    req.onsuccess = () => {
      if (!req.result) return;
      out = change(req.result) || req.result;
      store.put(out);
    };
    tx.oncomplete = () => resolve(out);
    tx.onerror = () => reject(tx.error);
  });
}

export function getMeta(key) { return run('meta', 'readonly', (s) => s.get(key)); }
export function setMeta(key, value) { return run('meta', 'readwrite', (s) => s.put(value, key)); }
