// The page: accounts, enrollment, the challenge screen. Each account
// long-polls its bridge while the page is open; the service worker
// (sw.js) handles pushes while it is not.

import { loadStrings, t } from './strings.js';
import { call, now, ApiError, PATH_PENDING, PATH_DEVICE } from './api.js';
import { accounts, getAccount, deleteAccount } from './db.js';
import {
  verifyChallenge, fetchChallenge, answerChallenge, refreshPushKeys, ChallengeError, PUSH_KEYS_MAX_AGE_MS,
} from './challenges.js';
import { parseLink, LinkError, EnrollError, enroll, passkeyPossible, platformName } from './enroll.js';
import * as push from './push.js';
import { missing } from './support.js';

// The fragment (an activation link with its code, or a challenge to
// open) is taken and cleared first of all, before anything is loaded: the
// activation code must not stay in the address bar or the history, even
// when the app fails to start.
const startHash = location.hash;
if (startHash) history.replaceState(null, '', location.pathname);

const $ = (id) => document.getElementById(id);
const views = ['loading', 'unsupported', 'challenge', 'result', 'enroll', 'home'];
const WAIT = 25; // long-poll seconds (the bridge caps it at 30)
const MAX_KNOWN = 16;

let config;
let accts = [];
const pollers = new Map(); // account id → AbortController
// Challenges by id: {acct, item, claims, state} where state is queued,
// shown, answering or rejected (failed verification: never shown).
const challenges = new Map();
let current = null; // the challenge on screen
let tick = null;
let workerFailed = false; // the service worker did not register: no Web Push

function show(name, focus) {
  for (const v of views) $('view-' + v).hidden = v !== name;
  if (focus) focus.focus();
}

function say(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', Boolean(isError));
}

// ask shows the confirmation dialog; it resolves to true for yes.
function ask(title, text, yes) {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yes;
  return new Promise((resolve) => {
    const done = (v) => () => {
      $('confirm-yes').onclick = $('confirm-no').onclick = d.oncancel = null;
      d.close();
      resolve(v);
    };
    $('confirm-yes').onclick = done(true);
    $('confirm-no').onclick = done(false);
    d.oncancel = done(false);
    d.showModal();
    $('confirm-no').focus();
  });
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

// isIOS: iPhone, iPod, and iPad, whose Safari says Macintosh (iPadOS 13
// and later) but has a touch screen.
function isIOS() {
  const ua = navigator.userAgent;
  return /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
}
function standalone() {
  return navigator.standalone === true || matchMedia('(display-mode: standalone)').matches;
}

// ---- accounts ---------------------------------------------------------

async function refreshAccounts() {
  accts = await accounts();
  for (const a of accts) {
    if (Date.now() - (a.keysRefreshedAt || a.enrolledAt || 0) > PUSH_KEYS_MAX_AGE_MS && !pollers.has(a.id)) {
      refreshPushKeys(a).catch((e) => console.warn('refreshing the push keys failed:', e.message || e));
    }
  }
  renderHome();
  for (const a of accts) if (!pollers.has(a.id)) startPoll(a);
  for (const [id, ctl] of pollers) {
    if (!accts.some((a) => a.id === id)) { ctl.abort(); pollers.delete(id); }
  }
}

function renderHome() {
  const list = $('accounts');
  list.replaceChildren();
  for (const a of accts) {
    const li = document.createElement('li');
    li.className = 'account';
    li.dataset.testid = 'account';
    const name = document.createElement('p');
    name.className = 'account-user';
    name.textContent = a.user;
    const meta = document.createElement('p');
    meta.className = 'account-meta';
    meta.textContent = t('app.account_meta', a.appName, new URL(a.baseURL).host);
    const key = document.createElement('p');
    key.className = 'account-key' + (a.credentialId ? '' : ' weak');
    key.dataset.testid = 'account-key';
    key.textContent = a.credentialId ? t('app.key_passkey') : t('app.key_software');
    const rm = document.createElement('button');
    rm.type = 'button';
    rm.className = 'link danger';
    rm.textContent = t('app.remove');
    rm.setAttribute('aria-label', t('app.remove_label', a.user, a.appName));
    rm.onclick = () => removeAccount(a);
    li.append(name, meta, key, rm);
    list.append(li);
  }
  $('home-empty').hidden = accts.length > 0;
  $('home-waiting').hidden = accts.length === 0;
  $('add-ios').hidden = !(isIOS() && !standalone());
  renderNotify();
}

async function removeAccount(a) {
  const yes = await ask(t('app.remove_confirm_title'), t('app.remove_confirm_text', a.user, a.appName), t('app.remove'));
  if (!yes) return;
  // The bridge is told to stop waking this phone for the account (the
  // device itself stays enrolled until removed on the account page: the
  // app cannot revoke it). Offline, the account is removed all the same.
  try {
    await call(a, 'PUT', PATH_DEVICE, { body: { push_provider: '', push_token: '' } });
  } catch (e) {
    console.warn('clearing the push token failed:', e.message || e);
  }
  await deleteAccount(a.id);
  await refreshAccounts();
  say(t('app.removed', a.user));
  $('home-title').focus();
}

// An account the bridge no longer knows (revoked, deleted) is removed.
async function accountGone(a) {
  await deleteAccount(a.id);
  say(t('app.account_gone', a.user, a.appName), true);
  await refreshAccounts();
}

// ---- notifications ----------------------------------------------------

function renderNotify() {
  const card = $('notify');
  if (!config.vapid_key || accts.length === 0) { card.hidden = true; return; }
  card.hidden = false;
  const btn = $('notify-on');
  const state = $('notify-state');
  if (!push.supported() || workerFailed) {
    btn.hidden = true;
    state.textContent = isIOS() && !standalone() ? t('app.notify_ios') : t('app.notify_unsupported');
    return;
  }
  const perm = Notification.permission;
  btn.hidden = perm !== 'default';
  state.textContent = perm === 'granted' ? t('app.notify_state_on') : perm === 'denied' ? t('app.notify_state_blocked') : '';
}

async function turnOnNotifications() {
  $('notify-on').disabled = true;
  try {
    const perm = await push.turnOn(config);
    if (perm === 'granted') say(t('app.notify_done'));
  } catch (e) {
    console.warn('turning on notifications failed:', e);
    say(t('app.notify_failed'), true);
  } finally {
    $('notify-on').disabled = false;
    renderNotify();
  }
}

// ---- long-poll --------------------------------------------------------

function knownFor(acct) {
  const ids = [];
  for (const [id, c] of challenges) if (c.acct.id === acct.id) ids.push(id);
  return ids.slice(-MAX_KNOWN);
}

function startPoll(acct) {
  const ctl = new AbortController();
  pollers.set(acct.id, ctl);
  poll(acct.id, ctl.signal);
}

async function poll(id, signal) {
  let backoff = 1;
  while (!signal.aborted) {
    const acct = await getAccount(id);
    if (!acct) return;
    try {
      const known = knownFor(acct);
      const q = `?wait=${WAIT}` + (known.length ? '&known=' + known.join(',') : '');
      const r = await call(acct, 'GET', PATH_PENDING, { query: q, signal });
      backoff = 1;
      await pending(acct, Array.isArray(r && r.challenges) ? r.challenges : []);
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.gone) { await accountGone(acct); return; }
      console.warn('long-poll failed, retrying:', e.message || e);
      const wait = e instanceof ApiError && e.retryAfter > 0 ? e.retryAfter : backoff;
      backoff = Math.min(backoff * 2, 180);
      await sleep(wait * 1000, signal);
    }
  }
}

// pending handles one answer of the long-poll: new challenges are
// verified and queued, the ones that left the list are dropped (answered
// elsewhere, expired, cancelled: §9.4).
async function pending(acct, items) {
  const listed = new Set(items.map((i) => i && i.id));
  for (const [id, c] of challenges) {
    if (c.acct.id !== acct.id || listed.has(id) || c.state === 'answering') continue;
    challenges.delete(id);
    if (current === c) closedElsewhere(c);
  }
  for (const item of items) {
    if (!item || item.state !== 'pending' || challenges.has(item.id)) continue;
    await consider(acct, item);
  }
  next();
}

// consider verifies a challenge and queues it; one that fails is never
// shown (and named as known, so the long-poll does not return at once).
async function consider(acct, item, wantID) {
  try {
    const v = await verifyChallenge(acct, item, wantID);
    challenges.set(item.id, { acct: v.acct, item, claims: v.claims, state: 'queued' });
    return true;
  } catch (e) {
    if (!(e instanceof ChallengeError)) throw e;
    console.warn('refused a challenge:', e.message);
    challenges.set(item.id, { acct, item, claims: null, state: 'rejected' });
    return false;
  }
}

// open shows the challenge cid (from a notification): each account is
// asked for it unless the long-poll has it already.
async function open(cid) {
  if (!challenges.has(cid)) {
    for (const a of accts) {
      try {
        const r = await fetchChallenge(a, cid);
        if (r) {
          if (!challenges.has(cid)) challenges.set(cid, { acct: r.acct, item: r.item, claims: r.claims, state: 'queued' });
          break;
        }
      } catch (e) {
        if (e instanceof ApiError && e.gone) { await accountGone(a); continue; }
        if (!(e instanceof ChallengeError)) console.warn('fetching the challenge failed:', e.message || e);
      }
    }
  }
  const c = challenges.get(cid);
  if (c && c.state === 'shown') { show('challenge', $('challenge-title')); return; }
  if (c && c.state === 'queued') { next(cid); return; }
  if (!current || current.state === 'done') goHome();
  say(t('app.challenge_gone'));
}

// next shows a queued challenge when none is on screen (prefer one id).
function next(prefer) {
  if (enrolling || (current && current.state !== 'done')) return;
  // A challenge that closed on screen without an answer stays on its
  // result until Done, with "This wasn't me": the next one (maybe the
  // attacker's attempt that superseded it) must not replace it unseen.
  if (current && ['elsewhere', 'expired', 'reporting'].includes(current.outcome)) return;
  let c = prefer && challenges.get(prefer);
  if (!c || c.state !== 'queued') {
    c = [...challenges.values()].find((x) => x.state === 'queued');
  }
  if (c) showChallenge(c);
}

// ---- the challenge screen ---------------------------------------------

function channelName(ch) {
  const key = 'app.channel_' + ch;
  const s = t(key);
  return s === key ? ch : s;
}

function row(id, value) {
  $(id + '-row').hidden = !value;
  $(id).textContent = value || '';
}

function clip(s, n) { return s && s.length > n ? s.slice(0, n - 1) + '…' : s; }

function showChallenge(c) {
  current = c;
  c.state = 'shown';
  $('view-challenge').dataset.cid = c.item.id;
  const k = c.claims;
  $('challenge-app').textContent = t('app.challenge_app', k.app_name || k.app);
  $('challenge-user').textContent = k.sub;
  $('challenge-channel').textContent = channelName(k.channel);
  row('challenge-ip', k.ip);
  row('challenge-loc', k.loc);
  row('challenge-ua', clip(k.ua, 120));
  row('challenge-account', accts.length > 1 ? t('app.account_meta', c.acct.user, c.acct.appName) : '');
  $('challenge-time').textContent = new Date(k.iat * 1000).toLocaleString(document.documentElement.lang);
  const input = $('number');
  input.value = '';
  $('number-row').hidden = k.nm === 0;
  if (k.nm > 0) {
    input.maxLength = k.nm;
    input.minLength = k.nm;
    $('number-hint').textContent = t('app.number_hint', k.nm);
  }
  setBusy(false);
  say('');
  document.title = t('app.challenge_title');
  clearInterval(tick);
  tick = setInterval(countdown, 1000);
  countdown();
  show('challenge', k.nm > 0 ? input : $('challenge-title'));
}

function numberOK() {
  const k = current.claims;
  return k.nm === 0 || new RegExp(`^[0-9]{${k.nm}}$`).test($('number').value);
}

function setBusy(busy) {
  $('approve').disabled = busy || !numberOK();
  $('deny').disabled = busy;
  $('fraud').disabled = busy;
  $('number').disabled = busy;
}

function countdown() {
  if (!current || current.state === 'done') return;
  const left = current.claims.exp - now(current.acct.baseURL);
  if (left <= 0 && current.state === 'shown') {
    finish(current, 'expired');
    return;
  }
  $('challenge-expires').textContent = t('app.expires_in', Math.max(left, 0));
}

function closedElsewhere(c) {
  if (c.state === 'shown') finish(c, 'elsewhere');
}

async function decide(decision) {
  const c = current;
  if (!c || c.state !== 'shown') return;
  if (decision === 'fraud') {
    const yes = await ask(t('app.fraud_confirm_title'), t('app.fraud_confirm_text'), t('app.fraud_confirm'));
    if (!yes || c.state !== 'shown') return;
  }
  const number = decision === 'approve' && c.claims.nm > 0 ? $('number').value : '';
  if (decision === 'approve' && !numberOK()) return;
  c.state = 'answering';
  setBusy(true);
  say(t('app.sending'));
  try {
    const r = await answerChallenge(c.acct, c.item, decision, number);
    let outcome;
    if (r.fraud_reported || r.state === 'fraud') outcome = 'reported';
    else if (r.state === 'approved') outcome = 'approved';
    else if (r.state === 'denied') outcome = decision === 'approve' && number ? 'mismatch' : 'denied';
    else outcome = 'elsewhere';
    finish(c, outcome);
  } catch (e) {
    if (e instanceof DOMException && (e.name === 'NotAllowedError' || e.name === 'AbortError')) {
      // The passkey prompt was cancelled or timed out: nothing was sent.
      c.state = 'shown';
      setBusy(false);
      say(t('app.passkey_cancelled'), true);
      return;
    }
    if (e instanceof ApiError) {
      if (e.gone) { finish(c, 'removed'); await accountGone(c.acct); return; }
      if (e.status === 409 && e.code === 'expired') { finish(c, 'expired'); return; }
      if (e.status === 409 || e.status === 404) { finish(c, 'elsewhere'); return; }
      // Refused answers (a key this application does not accept, a passkey
      // check that failed on the server): the challenge stays open for
      // another device, but not for this answer.
      if (e.status === 403 || (e.status === 400 && e.code === 'invalid_answer')) { finish(c, 'refused'); return; }
    }
    console.warn('answering failed:', e);
    c.state = 'shown';
    setBusy(false);
    say(t('app.answer_failed'), true);
  }
}

// finish shows how a challenge ended and forgets it.
function finish(c, outcome) {
  c.state = 'done';
  c.outcome = outcome;
  clearInterval(tick);
  document.title = config ? config.name : document.title;
  closeNotifications(c.item.id);
  $('result-title').textContent = t('app.result_' + outcome + '_title');
  $('result-body').textContent = t('app.result_' + outcome + '_body');
  $('view-result').dataset.outcome = outcome;
  // A challenge that closed without this phone's answer (answered on
  // another device, superseded, expired while the user read it) can still
  // be reported: the bridge takes late fraud reports (§8).
  const late = outcome === 'elsewhere' || outcome === 'expired';
  $('result-fraud').hidden = !late;
  $('result-fraud').disabled = false;
  say('');
  show('result', $('result-title'));
}

// reportLate reports the challenge on the result screen as fraud.
async function reportLate() {
  const c = current;
  if (!c || c.state !== 'done' || (c.outcome !== 'elsewhere' && c.outcome !== 'expired')) return;
  const was = c.outcome;
  c.outcome = 'reporting'; // one report, even on a double tap
  const yes = await ask(t('app.fraud_confirm_title'), t('app.fraud_confirm_text'), t('app.fraud_confirm'));
  if (!yes || current !== c) return;
  $('result-fraud').disabled = true;
  say(t('app.sending'));
  try {
    const r = await answerChallenge(c.acct, c.item, 'fraud', '');
    if (r.fraud_reported || r.state === 'fraud') { finish(c, 'reported_late'); return; }
    console.warn('the late report was not taken:', JSON.stringify(r));
  } catch (e) {
    if (e instanceof DOMException && (e.name === 'NotAllowedError' || e.name === 'AbortError')) {
      c.outcome = was;
      $('result-fraud').disabled = false;
      say(t('app.passkey_cancelled'), true);
      return;
    }
    if (e instanceof ApiError && e.gone) { await accountGone(c.acct); return; }
    console.warn('the late fraud report failed:', e.message || e);
  }
  c.outcome = was;
  $('result-fraud').disabled = false;
  say(t('app.report_failed'), true);
}

async function closeNotifications(cid) {
  try {
    const reg = await navigator.serviceWorker.getRegistration('/app/');
    if (!reg) return;
    for (const n of await reg.getNotifications({ tag: cid })) n.close();
  } catch {
    // nothing to close
  }
}

function resultDone() {
  // A refused answer leaves the challenge open on the bridge (another
  // device may answer it): it is kept as rejected, so that the long-poll
  // does not show it again. Others are closed: forgotten.
  if (current && current.outcome === 'refused') current.state = 'rejected';
  else if (current) challenges.delete(current.item.id);
  current = null;
  goHome();
  next();
}

function goHome() {
  renderHome();
  show('home', $('home-title'));
}

// ---- enrollment -------------------------------------------------------

let enrolling = null; // the parsed link on the enrollment screen

// unsupported shows that this browser lacks what the app needs; withLink
// says the activation link was not used (it still works elsewhere).
function unsupported(what, withLink) {
  console.warn('this browser lacks', what);
  $('unsupported-link').hidden = !withLink;
  show('unsupported', $('unsupported-title'));
}

async function startEnroll(text) {
  // Checked before anything of the link is used: the code stays unspent.
  const lacks = await missing();
  if (lacks) { unsupported(lacks, true); return; }
  let link;
  try {
    link = parseLink(text, config.base_url);
  } catch (e) {
    if (!(e instanceof LinkError)) throw e;
    console.warn('refused an activation link:', e.message);
    goHome();
    say(t(e.key), true);
    return;
  }
  enrolling = link;
  $('enroll-intro').textContent = t('app.enroll_intro', config.name);
  $('enroll-user').textContent = link.user;
  $('enroll-server').textContent = new URL(link.url).host;
  $('enroll-fallback').hidden = true;
  setEnrollBusy(false);
  say('');
  if (isIOS() && !standalone()) {
    // In a Safari tab: the Home Screen app has storage of its own and only
    // it gets notifications, so an account set up here would be lost to
    // it (and the code spent). The Home Screen steps come first.
    $('enroll-actions').hidden = true;
    $('enroll-ios').hidden = false;
    $('enroll-ios-link').value = link.text;
    show('enroll', $('enroll-title'));
    $('enroll-ios-copy').focus();
    return;
  }
  await enrollHere();
}

// enrollHere offers to set up in this browser (the passkey, or why not).
async function enrollHere() {
  $('enroll-ios').hidden = true;
  $('enroll-ios-link').value = '';
  $('enroll-actions').hidden = false;
  $('enroll-start').hidden = false;
  show('enroll', $('enroll-title'));
  if (!(await passkeyPossible(config))) {
    offerSoftware(config.rp_id ? 'app.enroll_no_passkey' : 'app.enroll_no_rpid', false);
  }
}

// offerSoftware shows the choice of a key kept in this browser, saying why
// there is no passkey; retry offers the passkey again.
function offerSoftware(reasonKey, retry) {
  $('enroll-start').hidden = true;
  $('enroll-fallback').hidden = false;
  $('enroll-fallback-reason').textContent = t(reasonKey);
  $('enroll-retry').hidden = !retry;
  $('enroll-software').focus();
}

function setEnrollBusy(busy) {
  for (const id of ['enroll-start', 'enroll-cancel', 'enroll-software', 'enroll-retry']) $(id).disabled = busy;
}

async function doEnroll(passkey) {
  const link = enrolling;
  if (!link) return;
  const lacks = await missing();
  if (lacks) { enrolling = null; unsupported(lacks, true); return; }
  setEnrollBusy(true);
  say(t('app.enrolling'));
  try {
    const name = t('app.device_name', platformName() || config.name).trim();
    const acct = await enroll(config, link, passkey, name);
    enrolling = null;
    await refreshAccounts();
    goHome();
    say(t('app.enrolled', acct.user));
    next();
    push.sync(config).catch((e) => console.warn('registering the push subscription failed:', e));
  } catch (e) {
    setEnrollBusy(false);
    if (passkey && e instanceof DOMException &&
        (e.name === 'NotSupportedError' || e.name === 'NotAllowedError' || e.name === 'InvalidStateError' || e.name === 'SecurityError')) {
      console.warn('making the passkey failed:', e.name, e.message);
      say('');
      offerSoftware('app.enroll_passkey_failed', true);
      return;
    }
    let key = 'app.enroll_failed';
    if (e instanceof EnrollError) key = e.key;
    else if (e instanceof ApiError && e.code === 'invalid_activation') key = 'app.enroll_code_invalid';
    else if (e instanceof ApiError && e.status === 429) key = 'app.enroll_rate_limited';
    else if (e instanceof ApiError && e.status === 400 && passkey) key = 'app.enroll_passkey_refused';
    console.warn('enrollment failed:', e.message || e);
    say(t(key), true);
  }
}

// ---- start ------------------------------------------------------------

async function loadConfig() {
  const resp = await fetch('/app/config.json', { cache: 'no-store', credentials: 'omit' });
  if (!resp.ok) throw new Error('config: ' + resp.status);
  return resp.json();
}

// route handles the fragment: an activation link or a challenge to open.
// The fragment is cleared at once: the activation code must not stay in
// the history.
async function route(h) {
  if (typeof h !== 'string') { // a hashchange
    h = location.hash;
    if (h) history.replaceState(null, '', location.pathname);
  }
  if (!h) return false;
  if (h.startsWith('#enroll?')) { await startEnroll(h); return true; }
  const m = /^#c=([A-Za-z0-9_-]{1,64})$/.exec(h);
  if (m) { await open(m[1]); return true; }
  return false;
}

async function main() {
  await loadStrings();
  config = await loadConfig();
  document.title = config.name;
  const lacks = await missing();
  if (lacks) {
    // Nothing is started: no enrollment (the code stays unspent), no
    // long-poll of challenges this browser could not verify.
    unsupported(lacks, startHash.startsWith('#enroll?'));
    document.body.dataset.ready = 'true';
    return;
  }
  if ('serviceWorker' in navigator) {
    // A module worker (Firefox only from 147): where it does not register,
    // the app works while open (long-poll) but gets no notifications.
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/', type: 'module', updateViaCache: 'none' })
      .catch((e) => {
        console.warn('the service worker did not register:', e);
        workerFailed = true;
        if (config && accts.length) renderNotify();
      });
    navigator.serviceWorker.addEventListener('message', (ev) => {
      const d = ev.data;
      if (d && d.t === 'open' && typeof d.cid === 'string') open(d.cid);
    });
  }
  $('approve').onclick = () => decide('approve');
  $('deny').onclick = () => decide('deny');
  $('fraud').onclick = () => decide('fraud');
  $('number').oninput = () => {
    const v = $('number');
    const clean = v.value.replace(/[^0-9]/g, '');
    if (clean !== v.value) v.value = clean;
    if (current && current.state === 'shown') $('approve').disabled = !numberOK();
  };
  $('number').onkeydown = (ev) => { if (ev.key === 'Enter' && numberOK()) decide('approve'); };
  $('result-done').onclick = resultDone;
  $('result-fraud').onclick = reportLate;
  $('enroll-start').onclick = () => doEnroll(true);
  $('enroll-retry').onclick = () => doEnroll(true);
  $('enroll-software').onclick = () => doEnroll(false);
  $('enroll-cancel').onclick = () => { enrolling = null; goHome(); next(); };
  $('enroll-ios-here').onclick = () => { if (enrolling) enrollHere(); };
  $('enroll-ios-cancel').onclick = () => { enrolling = null; $('enroll-ios-link').value = ''; goHome(); next(); };
  $('enroll-ios-copy').onclick = async () => {
    try {
      await navigator.clipboard.writeText($('enroll-ios-link').value);
      say(t('app.enroll_ios_copied'));
    } catch (e) {
      // No clipboard access: the link is selected for the user to copy.
      console.warn('copying the link failed:', e.name || e);
      $('enroll-ios-link').select();
      say(t('app.enroll_ios_copy_failed'), true);
    }
  };
  $('notify-on').onclick = turnOnNotifications;
  $('link-go').onclick = () => { const v = $('link').value; $('link').value = ''; startEnroll(v); };
  $('link').onkeydown = (ev) => { if (ev.key === 'Enter') $('link-go').click(); };
  window.addEventListener('hashchange', () => route());

  await refreshAccounts();
  if (!(await route(startHash))) goHome();
  document.body.dataset.ready = 'true';
  push.sync(config).catch((e) => console.warn('registering the push subscription failed:', e));
}

main().catch((e) => {
  console.error('the app did not start:', e);
  say(t('app.start_failed'), true);
});
