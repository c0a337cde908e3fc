// The waiting page: learn the push's outcome without reloading, then post
// the "continue" form (the server decides what comes next). Server-Sent
// Events where the browser has them, a long poll otherwise.
//
// The page shows one push (its attempt). When that push is no longer the
// sign-in's (the user sent it again, here or in another tab), the server
// says "stale" and the page loads the current one instead of continuing.
// Once the user leaves the page (a form of its own, a link), it does
// nothing more: a late event must not submit "continue" over the
// navigation the user asked for.
(function () {
  'use strict';
  var root = document.getElementById('waiting');
  var form = document.getElementById('continue');
  if (!root || !form) {
    return;
  }
  var base = root.getAttribute('data-base');
  var attempt = encodeURIComponent(root.getAttribute('data-attempt') || '');
  var status = document.getElementById('status');
  var finished = false;
  var es = null;

  function stop() {
    finished = true;
    if (es) {
      es.close();
    }
  }

  // The user's own navigation wins over anything the script would do.
  document.addEventListener('submit', stop, true);
  document.addEventListener('click', function (e) {
    var t = e.target;
    while (t && t !== document) {
      if (t.tagName === 'A' && t.getAttribute('href')) {
        stop();
        return;
      }
      t = t.parentNode;
    }
  }, true);
  window.addEventListener('pagehide', stop);

  function finish(state) {
    if (finished) {
      return;
    }
    stop();
    if (state === 'stale') {
      window.location.replace(base);
      return;
    }
    if (status) {
      status.textContent = root.getAttribute(state === 'approved' ? 'data-approved' : 'data-finishing');
    }
    form.submit();
  }

  function poll() {
    if (finished) {
      return;
    }
    fetch(base + '/status?attempt=' + attempt, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('status ' + r.status);
        }
        return r.json();
      })
      .then(function (s) {
        if (s.state === 'pending') {
          poll();
        } else {
          finish(s.state);
        }
      })
      .catch(function () {
        setTimeout(poll, 3000);
      });
  }

  if (window.EventSource) {
    var failures = 0;
    es = new EventSource(base + '/events?attempt=' + attempt);
    es.onopen = function () {
      failures = 0;
    };
    es.addEventListener('outcome', function (e) {
      es.close();
      var s = {};
      try {
        s = JSON.parse(e.data);
      } catch (err) {
        s = { state: 'unknown' };
      }
      finish(s.state);
    });
    es.onerror = function () {
      // The server ends each stream after a while and the browser
      // reconnects; only repeated failures mean events do not get through.
      failures++;
      if (failures > 5 && !finished) {
        es.close();
        poll();
      }
    };
  } else {
    poll();
  }
})();
