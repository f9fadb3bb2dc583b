/* The counter tablet (评价器): polls its window's state, asks for a rating when a record is
 * completed, and never loses a rating. Every rating is stored in localStorage with an
 * idempotency key *before* anything is sent; the citizen sees "received" at once; a
 * background loop sends the queue until the server acknowledges each item (2xx) or refuses
 * it definitively (4xx such as already rated). Retries reuse the key, so the server stores
 * each rating exactly once even when a response is lost.
 *
 * A good rating is stored on its first tap; its thanks screen offers the labels of that level
 * as an optional extra, queued after the rating as an amendment that names the rating by its
 * idempotency key. A bad rating asks for a label or a text before it is queued; its thanks
 * screen shows the ticket's case number from the server's answer (and a tracking QR code when
 * the record has no phone for the SMS reply).
 *
 * 适老化: 读给我听 plays the screen's prompt (pre-rendered audio of the very text shown; the
 * browser's speech only where the audio is missing and a Chinese voice exists), offered once
 * after an idle moment on the question; a big count-down with 继续评价 before the idle reset;
 * 大字版 / 高对比 for the citizen at the counter. No tap is swallowed by a lockout: only a press
 * that began before the screen appeared, or a second press at the same spot within a
 * double-tap interval, is ignored.
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
    countdown: +ds.countdownMs || 15000,
    readIdle: +ds.readIdleMs || 8000,
    doubleTap: ds.doubleTapMs === undefined ? 350 : +ds.doubleTapMs,
    thanks: +ds.thanksMs || 6000,
    caseMs: +ds.caseMs || 60000,
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

  // Called with the server's JSON answer to a queued item (while this page lives).
  var answered = {};

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
        var callback = answered[item.idempotencyKey];
        if (callback) {
          delete answered[item.idempotencyKey];
          if (resp.ok) { resp.json().then(callback, function () { callback(null); }); } else { callback(null); }
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
  var caseKey = null; // on the thanks screen of a bad rating: the key whose answer names the case
  var idleDeadline = 0;
  var lastActivity = Date.now();
  var shownAt = 0;
  var readOffered = false;
  var anonymousAllowed = ds.anonymous === "1";
  var online = true;

  function $(id) { return document.getElementById(id); }

  function show(name) {
    screen = name;
    screens.forEach(function (s) { $("screen-" + s).hidden = s !== name; });
    shownAt = performance.now();
    stopReading();
    $("read-offer").hidden = true;
    armIdle();
  }

  // ------------------------------------------------------------ taps
  // Instead of a lockout after each change of screen (which silently swallowed deliberate
  // taps), two narrow rules: a press that began before the current screen appeared is not
  // meant for it (a finger held through the change), and a second press within a double-tap
  // interval at the spot of the last accepted press is the same tap twice. A deliberate tap
  // anywhere else is taken at once; keyboard activation is never ignored.

  var press = { t: -1, x: 0, y: 0, ok: true };
  var accepted = { t: -Infinity, x: 0, y: 0 };

  document.addEventListener("pointerdown", function (e) {
    var t = performance.now();
    var near = Math.abs(e.clientX - accepted.x) < 40 && Math.abs(e.clientY - accepted.y) < 40;
    press = { t: t, x: e.clientX, y: e.clientY, ok: !(near && t - accepted.t < cfg.doubleTap) };
  }, true);

  // Typing between two presses makes them two deliberate taps, not one doubled.
  ["keydown", "input"].forEach(function (type) {
    document.addEventListener(type, function () { accepted = { t: -Infinity, x: 0, y: 0 }; }, true);
  });

  root.addEventListener("click", function (e) {
    if (e.detail === 0) { return; } // keyboard or a label forwarding its click
    var target = e.target.closest ? e.target.closest("button, label, input, textarea") : null;
    if (!target) { return; }
    if (!press.ok || press.t < shownAt) {
      e.preventDefault();
      e.stopImmediatePropagation();
      return;
    }
    accepted = { t: press.t, x: press.x, y: press.y };
  }, true);

  // ------------------------------------------------------------ idle reset and count-down

  function idleMs() {
    if (screen === "thanks") { return caseKey !== null || !$("case-box").hidden ? cfg.caseMs : cfg.thanks; }
    return cfg.idle;
  }
  // The short thanks of a good rating ends by itself; every other screen counts down visibly.
  function countsDown() { return screen !== "idle" && !(screen === "thanks" && $("thanks-bad").hidden); }

  function armIdle() {
    lastActivity = Date.now();
    idleDeadline = screen === "idle" ? 0 : Date.now() + idleMs();
    $("k-countdown").hidden = true;
  }

  function tick() {
    var now = Date.now();
    if (screen === "idle") {
      // A citizen who switched 大字版/高对比 on and left without rating: back to the defaults.
      if (modesOn() && now - lastActivity >= cfg.idle) { resetModes(); }
      return;
    }
    if (screen === "rate" && !readOffered && now - lastActivity >= cfg.readIdle) {
      readOffered = true;
      offerReading();
    }
    var left = idleDeadline - now;
    if (left <= 0) {
      if (current && screen !== "thanks") { markHandled(current.recordId); } // walked away
      goIdle();
      return;
    }
    var box = $("k-countdown");
    if (countsDown() && left <= cfg.countdown) {
      var n = String(Math.ceil(left / 1000));
      if ($("k-countdown-n").textContent !== n) { $("k-countdown-n").textContent = n; }
      $("k-extend").textContent = screen === "thanks" ? "继续查看" : "继续评价";
      box.hidden = false;
    } else {
      box.hidden = true;
    }
  }

  // ------------------------------------------------------------ 大字版 / 高对比

  var html = document.documentElement;
  function setMode(cls, button, on) {
    html.classList.toggle(cls, on);
    $(button).setAttribute("aria-pressed", on ? "true" : "false");
  }
  function modesOn() { return html.classList.contains("k-large") || html.classList.contains("k-contrast"); }
  // A shared counter tablet: the next citizen starts from the defaults, so both modes are
  // switched off whenever the tablet resets (the citizen web pages remember them instead).
  function resetModes() {
    setMode("k-large", "k-large", false);
    setMode("k-contrast", "k-contrast", false);
  }

  // ------------------------------------------------------------ 读给我听

  var audio = $("k-audio");
  var speaking = false;

  function zhVoice() {
    if (!window.speechSynthesis || !window.speechSynthesis.getVoices) { return null; }
    var voices = window.speechSynthesis.getVoices();
    for (var i = 0; i < voices.length; i++) {
      if (/^(zh|cmn)/i.test(voices[i].lang)) { return voices[i]; }
    }
    return null;
  }

  // The element holding the current screen's prompt: data-audio (file) and data-speech (text).
  function promptSource() {
    if (screen === "rate") { return $("screen-rate"); }
    if (screen === "reasons") { return document.querySelector("#screen-reasons .k-reasons:not([hidden])"); }
    return null;
  }

  function readButton() { return screen === "reasons" ? $("read-reasons") : $("read-rate"); }

  function updateReadButtons() {
    var rateSrc = $("screen-rate");
    $("read-rate").hidden = !(rateSrc.dataset.audio || zhVoice());
    var fs = document.querySelector("#screen-reasons .k-reasons:not([hidden])");
    $("read-reasons").hidden = !(fs && (fs.dataset.audio || zhVoice()));
  }

  function stopReading() {
    if (!audio.paused) { audio.pause(); }
    if (speaking && window.speechSynthesis) { window.speechSynthesis.cancel(); }
    speaking = false;
    Array.prototype.forEach.call(document.querySelectorAll(".k-read"), function (b) { b.classList.remove("playing"); });
  }

  function speak(text) {
    var voice = zhVoice();
    if (!voice || !text) { return false; }
    var u = new window.SpeechSynthesisUtterance(text);
    u.voice = voice;
    u.lang = voice.lang;
    u.rate = 0.9;
    u.onend = u.onerror = function () { speaking = false; readButton().classList.remove("playing"); };
    speaking = true;
    window.speechSynthesis.speak(u);
    return true;
  }

  // Returns a promise that rejects when nothing could be played (e.g. the autoplay policy
  // refused an unprompted start).
  function readAloud() {
    var src = promptSource();
    stopReading();
    if (!src) { return Promise.reject(new Error("nothing to read")); }
    var button = readButton();
    button.classList.add("playing");
    armIdle(); // listening is using the tablet
    if (src.dataset.audio) {
      var url = src.dataset.audio;
      if (audio.getAttribute("src") !== url) { audio.src = url; }
      audio.currentTime = 0;
      return Promise.resolve(audio.play()).catch(function (err) {
        if (err && err.name === "NotAllowedError") { button.classList.remove("playing"); throw err; }
        if (!speak(src.dataset.speech)) { button.classList.remove("playing"); throw err; }
      });
    }
    if (speak(src.dataset.speech)) { return Promise.resolve(); }
    button.classList.remove("playing");
    return Promise.reject(new Error("no audio and no Chinese voice"));
  }

  audio.addEventListener("ended", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".k-read"), function (b) { b.classList.remove("playing"); });
  });
  audio.addEventListener("error", function () {
    // The file is missing or unplayable: the browser's voice, where there is one.
    var src = promptSource();
    if (!(src && speak(src.dataset.speech))) {
      Array.prototype.forEach.call(document.querySelectorAll(".k-read"), function (b) { b.classList.remove("playing"); });
    }
  });

  // After an idle moment on the question, once per citizen: read it, and point at the button
  // (a browser that allows no sound before a tap still shows the offer; a kiosk's Chromium can
  // be started with --autoplay-policy=no-user-gesture-required).
  function offerReading() {
    if ($("read-rate").hidden) { return; }
    $("read-offer").hidden = false;
    readAloud().catch(function () { /* the offer stays on screen */ });
  }

  // ------------------------------------------------------------ the flow

  function goIdle() {
    current = null;
    rated = null;
    caseKey = null;
    resetModes(); // the next citizen starts from the defaults
    show("idle");
    $("start-anonymous").hidden = !anonymousAllowed;
  }

  function startRating(record) {
    current = { recordId: record ? record.id : null, level: null };
    readOffered = false;
    $("rate-subject").textContent = record ? "办理事项：" + record.service_item : "本窗口服务";
    $("rate-later").hidden = !record;
    show("rate");
    updateReadButtons();
  }

  function pickLevel(level) {
    current.level = level;
    if (level <= 2) {
      Array.prototype.forEach.call(document.querySelectorAll("#screen-reasons .k-reasons"), function (fs) {
        fs.hidden = +fs.dataset.level !== level;
        if (!fs.hidden) { $("reasons-title").textContent = fs.dataset.title; }
        Array.prototype.forEach.call(fs.querySelectorAll("input"), function (i) { i.checked = false; });
      });
      $("k-comment").value = "";
      $("reasons-error").hidden = true;
      show("reasons");
      updateReadButtons();
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
    var level = current.level;
    $("thanks-bad").hidden = level > 2;
    if (level <= 2) { waitForCase(); }
    var key = enqueue(payload); // stored before it is sent: the thanks below is never a lie
    current = null;
    rated = level > 2 ? { key: key, level: level } : null;
    if (level <= 2) { expectCase(key); }
    offerLabels(level);
    show("thanks");
  }

  // ------------------------------------------------------------ the case of a bad rating

  var caseTimer = null;

  function waitForCase() {
    $("case-pending").hidden = false;
    $("case-offline").hidden = true;
    $("case-box").hidden = true;
    $("case-qr").removeAttribute("src");
  }

  function expectCase(key) {
    caseKey = key;
    if (caseTimer) { clearTimeout(caseTimer); }
    // No answer soon (offline): say so; the number comes when the queue is sent.
    caseTimer = setTimeout(function () {
      if (caseKey === key && $("case-box").hidden) { $("case-pending").hidden = true; $("case-offline").hidden = false; }
    }, 4000);
    var deliver = function (body) {
      if (caseKey !== key || screen !== "thanks") { return; }
      var info = body && body["case"];
      $("case-pending").hidden = true;
      if (!info) { $("case-offline").hidden = false; return; }
      $("case-offline").hidden = true;
      $("case-number").textContent = info.number;
      $("case-sms").hidden = !info.sms;
      $("case-track").hidden = !!info.sms;
      if (!info.sms) {
        fetch(info.path + "/qr.svg", { credentials: "same-origin" })
          .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
          .then(function (svg) { $("case-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg); })
          .catch(function () { $("case-qr").alt = "二维码暂时无法显示，请记下工单编号到窗口查询"; });
      }
      $("case-box").hidden = false;
      armIdle(); // time to read the number and scan the code
    };
    answered[key] = deliver;
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
      if (screen !== "rate" || !current) { return; }
      pickLevel(+btn.dataset.level);
    });
  });
  $("reasons-submit").addEventListener("click", function () {
    if (screen !== "reasons" || !current) { return; }
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
    if (screen !== "thanks" || !rated) { return; }
    sendLabels();
  });
  $("reasons-back").addEventListener("click", function () {
    if (!current) { return; }
    show("rate");
  });
  $("rate-later").addEventListener("click", function () {
    if (!current || current.recordId === null) { return; }
    showQr();
  });
  $("qr-done").addEventListener("click", goIdle);
  $("case-done").addEventListener("click", goIdle);
  $("k-extend").addEventListener("click", armIdle); // 继续评价: a full idle period again
  $("k-large").addEventListener("click", function () {
    setMode("k-large", "k-large", !html.classList.contains("k-large"));
  });
  $("k-contrast").addEventListener("click", function () {
    setMode("k-contrast", "k-contrast", !html.classList.contains("k-contrast"));
  });
  ["read-rate", "read-reasons"].forEach(function (id) {
    $(id).addEventListener("click", function () {
      if ($(id).classList.contains("playing")) { stopReading(); return; }
      $("read-offer").hidden = true;
      readAloud().catch(function () { /* nothing to play: the button hides when so */ });
    });
  });
  if (window.speechSynthesis && "onvoiceschanged" in window.speechSynthesis) {
    window.speechSynthesis.addEventListener("voiceschanged", updateReadButtons);
  }
  $("start-anonymous").addEventListener("click", function () {
    if (screen !== "idle" || !anonymousAllowed) { return; }
    startRating(null);
  });
  ["pointerdown", "keydown", "input"].forEach(function (type) {
    // The thanks screen keeps its own short timer, unless the citizen is choosing labels there.
    document.addEventListener(type, function () {
      lastActivity = Date.now();
      if (screen !== "thanks" || rated || !$("thanks-bad").hidden) { armIdle(); }
    }, true);
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
  updateReadButtons();
  setInterval(tick, 250);
  document.documentElement.setAttribute("data-kiosk", "ready"); // its handlers are in place (tests wait for it)
  showStatus();
  flush();
  poll();
})();
