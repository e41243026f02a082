// Rater page of a ganworks visual Turing test. No external code; talks only to this server.
(function () {
  "use strict";
  const study = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
  const api = "/api/studies/" + encodeURIComponent(study);
  const $ = (id) => document.getElementById(id);
  let cfg = null, sess = null, answered = new Set(), current = null, shownAt = 0, busy = false, waiting = false;
  let exposure = null, exposureTimer = null;

  // Every error state of this page is one of these sentences (never a status code or a server message).
  const SAY = {
    network: "We could not reach the study server. Please check your internet connection and reload this page; " +
             "the answers you already gave are saved.",
    server: "The study server had a problem. Please wait a minute and reload this page; " +
            "the answers you already gave are saved.",
    noStudy: "This study could not be found. Please check that you opened the whole link from the study invitation.",
    placeholder: "This link still holds a placeholder instead of your participant ID. Please open the study " +
                 "from the link on the study site (for example Prolific), which fills in your ID.",
    badWorker: "The participant ID in this link is not valid. Please open the study from the link on the " +
               "study site (for example Prolific), without changing it.",
    otherBrowser: "This participant ID has already started the study in another browser or on another device " +
                  "(or this browser does not keep cookies for this site). Please continue where you started: " +
                  "your answers and your completion code stay there. If you cannot, please contact the researcher.",
    lostSession: "Your answers cannot be saved from this browser any more, because it no longer holds your " +
                 "session (cookies for this site may be blocked or were cleared). Please allow cookies for this " +
                 "site and reload this page; if that does not help, please contact the researcher.",
    image: "An image could not be loaded. Please reload this page; the answers you already gave are saved.",
    other: "Something went wrong on this page. Please reload it; if that keeps happening, please contact the researcher.",
  };
  const WORKER_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;
  const SECONDS_PER_IMAGE = 6;  // for the time the intro announces: a look, a decision, and the practice feedback

  function randomId() {
    const a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function show(id) { for (const s of ["intro", "task", "done"]) $(s).classList.toggle("hidden", s !== id); }
  function fail(msg) {
    setButtons(false); waiting = "failed";
    const e = $("error"); e.textContent = msg; e.classList.remove("hidden");
  }
  class ApiError extends Error {  // status 0: the server could not be reached
    constructor(status) { super("request failed"); this.status = status; }
  }
  function explain(stage, e) {
    const st = e instanceof ApiError ? e.status : -1;
    if (st === 0) return SAY.network;
    if (st >= 500) return SAY.server;
    if (stage === "config" && st === 404) return SAY.noStudy;
    if (stage === "session" && st === 422) return SAY.badWorker;
    if (stage === "session" && st === 409) return SAY.otherBrowser;
    if (st === 401 || st === 403) return SAY.lostSession;
    return SAY.other;
  }

  async function call(method, url, body, tries) {
    // Retries on network errors and 5xx with the same body (the vote id makes a retry idempotent).
    // The session's token travels in its cookie (same origin: fetch sends it).
    tries = tries || 6;
    for (let k = 0; ; k++) {
      let r;
      try {
        r = await fetch(url, { method, credentials: "same-origin",
                                headers: body ? { "Content-Type": "application/json" } : {},
                                body: body ? JSON.stringify(body) : undefined });
      } catch (e) {
        if (k + 1 >= tries) throw new ApiError(0);
        await new Promise((ok) => setTimeout(ok, 300 * 2 ** k)); continue;
      }
      if (r.status >= 500 && k + 1 < tries) { await new Promise((ok) => setTimeout(ok, 300 * 2 ** k)); continue; }
      if (!r.ok) throw new ApiError(r.status);
      return await r.json();
    }
  }

  function workerId() {
    const q = new URLSearchParams(location.search);
    for (const p of cfg.worker_params) { const v = q.get(p); if (v !== null && v !== "") return v; }
    return null;
  }

  async function start() {
    try { cfg = await call("GET", api + "/config"); } catch (e) { return fail(explain("config", e)); }
    const wid = workerId();
    if (wid !== null && !WORKER_RE.test(wid)) return fail(/[<>{}%]/.test(wid) ? SAY.placeholder : SAY.badWorker);
    // this browser's session comes back through its cookie; another browser with the same id is refused
    try { sess = await call("POST", api + "/sessions", wid ? { worker_id: wid } : {}); }
    catch (e) { return fail(explain("session", e)); }
    answered = new Set(sess.answered);
    exposure = sess.exposure_ms;
    if (sess.done) return finish(sess);
    const nt = sess.items.filter((it) => it.tutorial).length, total = sess.items.length;
    $("n-total").textContent = total;
    const minutes = Math.max(1, Math.ceil(total * SECONDS_PER_IMAGE / 60));
    $("minutes").textContent = minutes + (minutes === 1 ? " minute" : " minutes");
    $("n-tutorial").textContent = nt;
    $("n-main").textContent = total - nt;
    $("practice-note").classList.toggle("hidden", nt === 0);
    $("feedback-note").textContent = cfg.feedback ? "After the practice you will still be told whether you were right."
                                                  : "After the practice you will not be told.";
    if (cfg.exposure_ms) $("exposure-note").textContent = "Each image is shown only briefly, then hidden: answer from memory.";
    if (answered.size > 0) { show("task"); next(); } else { show("intro"); waiting = "start"; }
  }

  function next() {
    waiting = false;
    $("feedback").classList.add("hidden"); $("next").classList.add("hidden");
    const k = sess.items.findIndex((it) => !answered.has(it.image_id));
    if (k < 0) return;
    current = sess.items[k];
    $("phase").textContent = current.tutorial ? "practice" : "rating";
    $("phase").classList.toggle("hidden", false);
    // the same numbers the intro gave: practice images, then the images to rate
    const nTut = sess.items.filter((it) => it.tutorial).length;
    const nMain = sess.items.length - nTut;
    const doneTut = sess.items.filter((it) => it.tutorial && answered.has(it.image_id)).length;
    const doneMain = sess.items.filter((it) => !it.tutorial && answered.has(it.image_id)).length;
    $("counter").textContent = current.tutorial ? "practice image " + (doneTut + 1) + " of " + nTut
                                                : "image " + (doneMain + 1) + " of " + nMain;
    $("bar").style.width = (100 * answered.size / sess.items.length) + "%";
    const img = $("image");
    img.classList.add("hidden"); $("blank").classList.add("hidden");
    setButtons(false);
    img.onload = () => {
      img.classList.remove("hidden"); shownAt = performance.now(); setButtons(true);
      clearTimeout(exposureTimer);
      if (exposure) exposureTimer = setTimeout(() => { img.classList.add("hidden"); $("blank").classList.remove("hidden"); }, exposure);
    };
    img.onerror = () => fail(SAY.image);
    img.src = api + "/images/" + current.image_id;
  }

  function setButtons(on) { $("btn-real").disabled = !on; $("btn-fake").disabled = !on; busy = !on; }

  async function answer(a) {
    if (busy || !current || waiting) return;  // waiting: the intro, feedback shown, or a failure
    setButtons(false); clearTimeout(exposureTimer);
    const body = { vote_id: randomId(), image_id: current.image_id, answer: a,
                   latency_ms: Math.round(performance.now() - shownAt) };
    let r;
    try { r = await call("POST", api + "/sessions/" + encodeURIComponent(sess.session_id) + "/votes", body); }
    catch (e) { if (e.status === 409) { answered.add(current.image_id); return next(); } return fail(explain("vote", e)); }
    answered.add(current.image_id);
    if (r.exposure_ms) exposure = r.exposure_ms;
    $("bar").style.width = (100 * answered.size / sess.items.length) + "%";
    if (r.done) { sess.completion_code = r.completion_code; sess.completion_url = r.completion_url; }
    if (r.truth) {
      const fb = $("feedback");
      fb.textContent = (r.correct ? "Correct — " : "Not quite — ") + "this image was " + (r.truth === "real" ? "real." : "generated.");
      fb.className = "feedback " + (r.correct ? "ok" : "bad");
      $("next").classList.remove("hidden"); waiting = r.done ? "finish" : "next";
      return;
    }
    if (r.done) return finish(r);
    next();
  }

  function finish(r) {
    show("done");
    $("code").textContent = r.completion_code || sess.completion_code;
    const url = r.completion_url || sess.completion_url;
    if (url) {
      $("redirect").classList.remove("hidden"); $("redirect-link").href = url;
      setTimeout(() => { location.href = url; }, 4000);
    }
  }

  $("start").onclick = () => { show("task"); next(); };
  $("btn-real").onclick = () => answer("real");
  $("btn-fake").onclick = () => answer("fake");
  $("next").onclick = () => { if (waiting === "finish") finish(sess); else next(); };
  document.addEventListener("keydown", (e) => {
    if (e.repeat) return;
    const k = e.key.toLowerCase();
    if (waiting === "start" && (k === "enter" || k === " ")) { e.preventDefault(); $("start").click(); return; }
    if ((waiting === "next" || waiting === "finish") && (k === "enter" || k === " ")) { e.preventDefault(); $("next").click(); return; }
    if (k === "r" || k === "arrowleft") { e.preventDefault(); answer("real"); }
    else if (k === "g" || k === "arrowright") { e.preventDefault(); answer("fake"); }  // only the keys shown
  });
  start().catch((e) => fail(explain("start", e)));
})();
