// The waiting page: learn the push's outcome without reloading, then post
// the "continue" form (the server decides what comes next). Server-Sent
// Events where the browser has them, a long poll otherwise.
(function () {
  'use strict';
  var root = document.getElementById('waiting');
  var form = document.getElementById('continue');
  if (!root || !form) {
    return;
  }
  var base = root.getAttribute('data-base');
  var status = document.getElementById('status');
  var finished = false;

  function finish(state) {
    if (finished) {
      return;
    }
    finished = true;
    if (status) {
      status.textContent = root.getAttribute(state === 'approved' ? 'data-approved' : 'data-finishing');
    }
    form.submit();
  }

  function poll() {
    fetch(base + '/status', { credentials: 'same-origin', cache: 'no-store' })
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
    var es = new EventSource(base + '/events');
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
      if (failures > 5) {
        es.close();
        poll();
      }
    };
  } else {
    poll();
  }
})();
