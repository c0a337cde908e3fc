// The app's strings (the app.* keys of web/locales, served in the
// browser's language as /app/strings.json). No text shown to a user is
// written in the scripts.

let strings = {};

export async function loadStrings() {
  const resp = await fetch('/app/strings.json', { credentials: 'omit' });
  if (!resp.ok) throw new Error('strings: ' + resp.status);
  strings = await resp.json();
  return strings;
}

export function setStrings(s) { strings = s; }

// t is the string key with %s / %d replaced by args in order; a missing
// key shows as itself, so a gap is visible.
export function t(key, ...args) {
  const s = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  let i = 0;
  return s.replace(/%[sd%]/g, (m) => (m === '%%' ? '%' : String(args[i++] ?? '')));
}
