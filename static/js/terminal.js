/* The counter tablet (评价器): polls its window's state, asks for a rating when a record is
 * completed, and never loses a rating. Every rating is stored in localStorage with an
 * idempotency key *before* anything is sent; the citizen sees "received" at once; a
 * background loop sends the queue until the server acknowledges each item (2xx) or refuses
 * it definitively (4xx such as already rated). Retries reuse the key, so the server stores
 * each rating exactly once even when a response is lost.
 *
 * A good rating is stored on its first tap; its thanks screen offers the labels of that level
 * as an optional extra, queued after the rating as an amendment that names the rating by its
 * idempotency key. A bad rating asks for a label or a text before it is queued.
 */
(function () {
  "use strict";

  var root = document.getElementById("kiosk");
  if (!root) { return; }
  var ds = root.dataset;
  var cfg = {
    win: ds.window,
    stateUrl: ds.stateUrl,
    submitUrl: ds.submitUrl,
    labelsUrl: ds.labelsUrl,
    reasonsVersion: +ds.reasonsVersion || null,
    qrUrl: ds.qrUrl, // .../records/0/qr.svg: 0 is replaced by the record id
    poll: +ds.pollMs || 1000,
    idle: +ds.idleMs || 60000,
    lockout: +ds.lockoutMs || 1200,
    thanks: +ds.thanksMs || 6000,
    retryBase: +ds.retryBaseMs || 2000,
    retryMax: +ds.retryMaxMs || 60000
  };
  var QUEUE_KEY = "fbTerminal.queue." + cfg.win;
  var HANDLED_KEY = "fbTerminal.handled." + cfg.win;
  var HEADERS = { "X-Terminal-Request": "1", "Accept": "application/json" };

  // ------------------------------------------------------------ storage

  function load(key, fallback) {
    try {
      var v = JSON.parse(window.localStorage.getItem(key));
      return v === null || v === undefined ? fallback : v;
    } catch (e) { return fallback; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* full: keep going */ }
  }
  function uuid() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // Records this tablet already rated or let go: never asked for again.
  function isHandled(id) { return load(HANDLED_KEY, []).indexOf(id) !== -1; }
  function markHandled(id) {
    if (id === null || id === undefined) { return; }
    var list = load(HANDLED_KEY, []);
    if (list.indexOf(id) === -1) { list.push(id); }
    save(HANDLED_KEY, list.slice(-200));
  }

  // ------------------------------------------------------------ offline queue

  var flushing = false;
  var retryTimer = null;
  var retryDelay = cfg.retryBase;
  var nextRetryAt = 0;

  // ``url``: where the item goes (the ratings endpoint when omitted); returns its key.
  function enqueue(payload, url) {
    var queue = load(QUEUE_KEY, []);
    var key = uuid();
    var item = { idempotencyKey: key, payload: payload, createdAt: new Date().toISOString() };
    if (url) { item.url = url; }
    queue.push(item);
    save(QUEUE_KEY, queue);
    showStatus();
    nextRetryAt = 0;
    flush();
    return key;
  }

  function dropFromQueue(key) {
    save(QUEUE_KEY, load(QUEUE_KEY, []).filter(function (item) { return item.idempotencyKey !== key; }));
    showStatus();
  }

  // 2xx: stored (or stored before: a replay). Retry on network errors, 401 (pairing may come
  // back), 408/425/429 and 5xx. Any other 4xx is definitive: the rating can never be stored.
  function retryable(status) {
    return status === 401 || status === 408 || status === 425 || status === 429 || status >= 500;
  }

  function scheduleRetry() {
    if (retryTimer) { clearTimeout(retryTimer); }
    nextRetryAt = Date.now() + retryDelay;
    retryTimer = setTimeout(function () { retryTimer = null; flush(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, cfg.retryMax);
  }

  function flush() {
    if (flushing) { return; }
    var queue = load(QUEUE_KEY, []);
    if (!queue.length) { retryDelay = cfg.retryBase; return; }
    var item = queue[0];
    var body = {};
    Object.keys(item.payload).forEach(function (k) { body[k] = item.payload[k]; });
    body.sent_at = new Date().toISOString(); // with rated_at, gives the queue age on the tablet's clock
    flushing = true;
    fetch(item.url || cfg.submitUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: Object.assign({ "Content-Type": "application/json", "Idempotency-Key": item.idempotencyKey }, HEADERS),
      body: JSON.stringify(body)
    }).then(function (resp) {
      flushing = false;
      if (resp.ok || !retryable(resp.status)) {
        if (!resp.ok && window.console) {
          window.console.warn("rating " + item.idempotencyKey + " refused (" + resp.status + "), dropped");
        }
        dropFromQueue(item.idempotencyKey);
        retryDelay = cfg.retryBase;
        nextRetryAt = 0;
        flush();
      } else {
        scheduleRetry();
      }
    }, function () {
      flushing = false;
      scheduleRetry();
    });
  }

  function showStatus() {
    var n = load(QUEUE_KEY, []).length;
    var parts = [];
    if (!online) { parts.push("网络中断"); }
    if (n) { parts.push("待上传 " + n + " 条"); }
    document.getElementById("net-status").textContent = parts.join(" · ");
  }

  // ------------------------------------------------------------ screens

  var screens = ["idle", "rate", "reasons", "thanks", "qr"];
  var screen = "idle";
  var current = null; // {recordId: id|null, level: n}
  var rated = null; // on the thanks screen of a good rating: {key: its idempotency key, level: n}
  var lockUntil = 0;
  var idleTimer = null;
  var unlockTimer = null;
  var anonymousAllowed = ds.anonymous === "1";
  var online = true;

  function $(id) { return document.getElementById(id); }

  function show(name) {
    screen = name;
    screens.forEach(function (s) { $("screen-" + s).hidden = s !== name; });
    // A short lockout after every change of screen: a double tap or a held finger never
    // lands on the next screen's buttons (they are disabled, looking the same).
    lockUntil = Date.now() + cfg.lockout;
    var buttons = $("screen-" + name).querySelectorAll("button, input[type=checkbox]");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    if (unlockTimer) { clearTimeout(unlockTimer); }
    unlockTimer = setTimeout(function () {
      unlockTimer = null;
      // A timer may fire a millisecond before Date.now() reaches lockUntil: end the lockout
      // here too, so a button that looks enabled never swallows a tap.
      lockUntil = 0;
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
    }, cfg.lockout);
    armIdle();
  }

  function locked() { return Date.now() < lockUntil; }

  function armIdle() {
    if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
    if (screen === "idle") { return; }
    var ms = screen === "thanks" ? cfg.thanks : cfg.idle;
    idleTimer = setTimeout(function () {
      if (current && screen !== "thanks") { markHandled(current.recordId); } // walked away
      goIdle();
    }, ms);
  }

  function goIdle() {
    current = null;
    rated = null;
    show("idle");
    $("start-anonymous").hidden = !anonymousAllowed;
  }

  function startRating(record) {
    current = { recordId: record ? record.id : null, level: null };
    $("rate-subject").textContent = record ? "办理事项：" + record.service_item : "本窗口服务";
    $("rate-later").hidden = !record;
    show("rate");
  }

  function pickLevel(level) {
    current.level = level;
    if (level <= 2) {
      var names = { 1: "非常不满意", 2: "不满意" };
      $("reasons-level").textContent = names[level];
      Array.prototype.forEach.call(document.querySelectorAll("#screen-reasons .k-reasons"), function (fs) {
        fs.hidden = +fs.dataset.level !== level;
        Array.prototype.forEach.call(fs.querySelectorAll("input"), function (i) { i.checked = false; });
      });
      $("k-comment").value = "";
      $("reasons-error").hidden = true;
      show("reasons");
    } else {
      submit([], "");
    }
  }

  function submit(reasons, comment) {
    var payload = {
      record_id: current.recordId,
      level: current.level,
      reasons: reasons,
      comment: comment,
      rated_at: new Date().toISOString()
    };
    if (cfg.reasonsVersion) { payload.reasons_version = cfg.reasonsVersion; } // the list the citizen saw
    markHandled(current.recordId);
    var key = enqueue(payload); // stored before it is sent: the thanks below is never a lie
    var level = current.level;
    $("thanks-bad").hidden = level > 2;
    current = null;
    rated = level > 2 ? { key: key, level: level } : null;
    offerLabels(level);
    show("thanks");
  }

  // The labels of a good level, on the thanks screen: optional, the rating is stored already.
  function offerLabels(level) {
    var any = false;
    Array.prototype.forEach.call(document.querySelectorAll(".k-good"), function (fs) {
      var mine = +fs.dataset.level === level;
      fs.hidden = !mine;
      any = any || mine;
      Array.prototype.forEach.call(fs.querySelectorAll("input"), function (i) { i.checked = false; });
    });
    $("thanks-labels").hidden = !(rated && any);
    $("labels-done").hidden = true;
  }

  function sendLabels() {
    var codes = Array.prototype.map.call(
      document.querySelectorAll(".k-good:not([hidden]) input:checked"), function (i) { return +i.value; });
    if (!codes.length) { return; }
    enqueue({ rating_key: rated.key, labels: codes }, cfg.labelsUrl); // after the rating in the queue
    rated = null;
    $("thanks-labels").hidden = true;
    $("labels-done").hidden = false;
    armIdle();
  }

  function showQr() {
    var id = current.recordId;
    var img = $("qr-img");
    img.removeAttribute("src");
    fetch(cfg.qrUrl.replace("/records/0/", "/records/" + id + "/"), { headers: HEADERS, credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
      .then(function (svg) { img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg); })
      .catch(function () { img.alt = "二维码暂时无法显示，请稍后在短信中评价"; });
    markHandled(id);
    show("qr");
  }

  // ------------------------------------------------------------ events

  Array.prototype.forEach.call(document.querySelectorAll(".level5"), function (btn) {
    btn.addEventListener("click", function () {
      if (locked() || screen !== "rate" || !current) { return; }
      pickLevel(+btn.dataset.level);
    });
  });
  $("reasons-submit").addEventListener("click", function () {
    if (locked() || screen !== "reasons" || !current) { return; }
    var reasons = Array.prototype.map.call(
      document.querySelectorAll('#screen-reasons .k-reasons:not([hidden]) input:checked'), function (i) { return +i.value; });
    var comment = $("k-comment").value;
    if (!reasons.length && !comment.trim()) {
      // A bad rating says why: the server would refuse it, and a refused rating is lost.
      $("reasons-error").hidden = false;
      return;
    }
    submit(reasons, comment);
  });
  $("screen-reasons").addEventListener("change", function () { $("reasons-error").hidden = true; });
  $("k-comment").addEventListener("input", function () { $("reasons-error").hidden = true; });
  $("labels-submit").addEventListener("click", function () {
    if (locked() || screen !== "thanks" || !rated) { return; }
    sendLabels();
  });
  $("reasons-back").addEventListener("click", function () {
    if (locked() || !current) { return; }
    show("rate");
  });
  $("rate-later").addEventListener("click", function () {
    if (locked() || !current || current.recordId === null) { return; }
    showQr();
  });
  $("qr-done").addEventListener("click", function () { if (!locked()) { goIdle(); } });
  $("start-anonymous").addEventListener("click", function () {
    if (locked() || screen !== "idle" || !anonymousAllowed) { return; }
    startRating(null);
  });
  ["pointerdown", "keydown", "input"].forEach(function (type) {
    // The thanks screen keeps its own short timer, unless the citizen is choosing labels there.
    document.addEventListener(type, function () { if (screen !== "thanks" || rated) { armIdle(); } }, true);
  });
  window.addEventListener("online", function () { nextRetryAt = 0; flush(); });

  // ------------------------------------------------------------ polling

  function setText(id, text) { var el = $(id); if (el.textContent !== text) { el.textContent = text; } }

  function render(state) {
    setText("k-window", state.window.name);
    setText("k-department", state.department);
    setText("k-hall", state.hall);
    $("k-staff").hidden = !state.staff;
    if (state.staff) {
      setText("k-staff-name", state.staff.name);
      setText("k-staff-number", state.staff.staff_number);
      setText("k-photo", state.staff.name.charAt(0));
    }
    anonymousAllowed = !!state.anonymous;
    if (screen === "idle" && state.reasons_version && cfg.reasonsVersion &&
        state.reasons_version !== cfg.reasonsVersion) {
      window.location.reload(); // the reason code list changed: show the new one (the queue is kept)
      return;
    }
    if (screen === "idle") {
      $("start-anonymous").hidden = !anonymousAllowed;
      if (state.pending && !isHandled(state.pending.id)) { startRating(state.pending); }
    }
  }

  function poll() {
    fetch(cfg.stateUrl, { headers: HEADERS, credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) { window.location.reload(); return null; } // revoked: show nothing
        if (!resp.ok) { throw new Error(String(resp.status)); }
        return resp.json();
      })
      .then(function (state) {
        if (!state) { return; }
        var cameBack = !online;
        online = true;
        render(state);
        // The server answers again: send the queue now rather than at the next back-off.
        if (cameBack) { nextRetryAt = 0; retryDelay = cfg.retryBase; }
        if (!flushing && Date.now() >= nextRetryAt) {
          if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
          flush();
        }
        showStatus();
      })
      .catch(function () { online = false; showStatus(); })
      .then(function () { setTimeout(poll, cfg.poll); });
  }

  goIdle();
  showStatus();
  flush();
  poll();
})();
