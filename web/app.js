// The upload page: sends a CSV to POST /api/uploads, follows GET /api/uploads/<id> until
// Kafka has acknowledged every valid row, and shows results and pipeline health. Every value
// that comes from data is put into the page with textContent or an SVG text node, never as
// markup (a merchant called <script> stays text).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const BINS = 20;
  const POLL_MS = 300;
  const AUTO_MS = 3000;

  let lang = "en";
  let threshold = 0.95;
  let maxUpload = Infinity;
  let lastResults = null;
  let lastUpload = null;
  let uploadPhase = null; // null | "bytes" | "acks" | "final"
  let bytesLoaded = 0;
  let bytesTotal = 0;
  let autoTimer = null;

  // ---- language ----------------------------------------------------------------------
  function t(key, ...args) {
    const dict = window.I18N[lang] || window.I18N.en;
    let s = dict[key] !== undefined ? dict[key] : window.I18N.en[key] || key;
    args.forEach((a, i) => { s = s.split("{" + i + "}").join(String(a)); });
    return s;
  }

  function fmtInt(n) {
    return Number(n).toLocaleString(lang === "ru" ? "ru-RU" : "en-US");
  }

  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB"];
    let u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
  }

  function pickLang() {
    let saved = null;
    try { saved = localStorage.getItem("lang"); } catch (e) { saved = null; }
    if (saved === "ru" || saved === "en") return saved;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return nav.toLowerCase().startsWith("ru") ? "ru" : "en";
  }

  function applyLang(l) {
    lang = l;
    document.documentElement.lang = l;
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    document.title = t("title");
    $("lang-en").classList.toggle("active", l === "en");
    $("lang-ru").classList.toggle("active", l === "ru");
    $("lang-en").setAttribute("aria-pressed", String(l === "en"));
    $("lang-ru").setAttribute("aria-pressed", String(l === "ru"));
    if (lastUpload) renderUpload(lastUpload);
    renderProgress();
    if (lastResults) renderResults(lastResults);
    if (lastHealth) renderHealth(lastHealth);
  }

  // ---- HTTP --------------------------------------------------------------------------
  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const msg = body && body.error ? body.error : "HTTP " + r.status;
      throw new Error(msg);
    }
    return body;
  }

  // ---- upload ------------------------------------------------------------------------
  let chosen = null;

  function choose(file) {
    chosen = file || null;
    $("file-name").textContent = chosen ? chosen.name + " (" + fmtBytes(chosen.size) + ")" : "";
    $("send").disabled = !chosen || uploadPhase === "bytes" || uploadPhase === "acks";
  }

  function setState(kind, text) {
    const el = $("upload-state");
    el.textContent = text;
    el.dataset.state = kind;
    el.classList.toggle("bad", kind === "failed" || kind === "rejected" || kind === "error");
    el.classList.toggle("good", kind === "done");
  }

  function renderProgress() {
    const wrap = $("progress-wrap");
    if (!uploadPhase) { wrap.hidden = true; return; }
    wrap.hidden = false;
    const bar = $("progress");
    const text = $("progress-text");
    if (uploadPhase === "bytes") {
      bar.value = bytesTotal > 0 ? bytesLoaded / bytesTotal : 0;
      text.textContent = t("upload.bytes", fmtBytes(bytesLoaded), fmtBytes(bytesTotal));
      return;
    }
    const u = lastUpload;
    if (!u) return;
    const total = u.valid;
    const frac = total > 0 ? u.acked / total : 1;
    bar.value = frac;
    bar.dataset.acked = String(u.acked);
    bar.dataset.total = String(total);
    text.textContent = t("upload.acked", fmtInt(u.acked), fmtInt(total)) +
      " (" + Math.floor(frac * 100) + "%)";
  }

  function renderUpload(u) {
    $("summary").hidden = false;
    $("s-rows").textContent = fmtInt(u.rows);
    $("s-valid").textContent = fmtInt(u.valid);
    $("s-invalid").textContent = fmtInt(u.invalid);
    $("s-sent").textContent = fmtInt(u.sent);
    $("s-acked").textContent = fmtInt(u.acked);
    $("s-failed").textContent = fmtInt(u.failed);
    const err = $("upload-error");
    const msg = u.error || u.message || "";
    err.hidden = msg === "";
    err.textContent = msg;

    const fl = $("failure-list");
    fl.replaceChildren();
    (u.failures || []).forEach((f) => {
      const li = document.createElement("li");
      li.textContent = f.reason + " × " + fmtInt(f.count);
      fl.appendChild(li);
    });
    $("failures").hidden = !(u.failures && u.failures.length);

    const body = $("row-error-list");
    body.replaceChildren();
    (u.errors || []).forEach((e) => {
      const tr = document.createElement("tr");
      const a = document.createElement("td");
      a.className = "num";
      a.textContent = String(e.line);
      const b = document.createElement("td");
      b.textContent = e.reason;
      tr.append(a, b);
      body.appendChild(tr);
    });
    $("row-errors").hidden = !(u.errors && u.errors.length);
    const more = $("row-errors-more");
    more.hidden = !u.errors_truncated;
    more.textContent = u.errors_truncated ? t("sum.more", fmtInt(u.errors.length), fmtInt(u.invalid)) : "";

    const finished = u.state === "done" || u.state === "failed" || u.state === "rejected";
    if (u.state === "done") setState("done", u.failed > 0 ? t("upload.doneFailed") : t("upload.done"));
    else if (u.state === "failed") setState("failed", t("upload.failed"));
    else if (u.state === "rejected") setState("rejected", t("upload.rejected"));
    else setState(u.state, t("upload.waiting"));
    if (finished && uploadPhase === "acks") uploadPhase = "final";
  }

  async function follow(id) {
    for (;;) {
      let u;
      try {
        u = await getJSON("/api/uploads/" + encodeURIComponent(id));
      } catch (e) {
        setState("error", e.message);
        uploadPhase = "final";
        break;
      }
      lastUpload = u;
      renderUpload(u);
      renderProgress();
      const settled = u.acked + u.failed >= u.sent;
      if (u.state === "rejected" || ((u.state === "done" || u.state === "failed") && settled)) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    uploadPhase = "final";
    renderProgress();
    choose(chosen);
  }

  function send() {
    if (!chosen) return;
    if (chosen.size > maxUpload) {
      // The server would refuse it before reading the body; say so without sending it.
      $("summary").hidden = true;
      uploadPhase = null;
      renderProgress();
      setState("rejected", t("upload.tooBig", fmtBytes(chosen.size), fmtBytes(maxUpload)));
      return;
    }
    const form = new FormData();
    form.append("file", chosen, chosen.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/uploads");
    xhr.responseType = "json";
    uploadPhase = "bytes";
    bytesLoaded = 0;
    bytesTotal = chosen.size;
    lastUpload = null;
    delete $("progress").dataset.acked;
    delete $("progress").dataset.total;
    $("summary").hidden = true;
    setState("receiving", t("upload.sending"));
    renderProgress();
    choose(chosen);
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) { bytesLoaded = ev.loaded; bytesTotal = ev.total; }
      renderProgress();
    };
    xhr.onerror = () => {
      uploadPhase = null;
      renderProgress();
      setState("error", t("upload.network"));
      choose(chosen);
    };
    xhr.onload = () => {
      const body = xhr.response || {};
      if (xhr.status === 202 && body.id) {
        uploadPhase = "acks";
        lastUpload = body;
        renderUpload(body);
        renderProgress();
        follow(body.id);
        return;
      }
      uploadPhase = null;
      renderProgress();
      if (body && body.id) {
        lastUpload = body;
        renderUpload(body);
      } else {
        lastUpload = { rows: 0, valid: 0, invalid: 0, sent: 0, acked: 0, failed: 0,
          errors: [], failures: [], state: "rejected", error: body.error || "HTTP " + xhr.status };
        renderUpload(lastUpload);
      }
      choose(chosen);
    };
    xhr.send(form);
  }

  // ---- results -----------------------------------------------------------------------
  function svg(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach((k) => el.setAttribute(k, String(attrs[k])));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function drawHistogram(scores, thr) {
    const box = $("hist");
    box.replaceChildren();
    $("hist-title").textContent = t("results.hist", scores.length);
    $("hist-empty").hidden = scores.length > 0;
    if (scores.length === 0) return;
    const counts = new Array(BINS).fill(0);
    scores.forEach((s) => {
      const i = Math.min(BINS - 1, Math.max(0, Math.floor(s * BINS)));
      counts[i]++;
    });
    const W = 520, H = 260, L = 44, R = 12, T = 22, B = 40;
    const pw = W - L - R, ph = H - T - B;
    const max = Math.max(1, ...counts);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": t("results.hist", scores.length) });
    // y ticks: 0, max/2, max (integers)
    const yt = [0, Math.round(max / 2), max].filter((v, i, a) => a.indexOf(v) === i);
    yt.forEach((v) => {
      const y = T + ph - (v / max) * ph;
      root.appendChild(svg("line", { class: "axis", x1: L - 4, y1: y, x2: L, y2: y }));
      root.appendChild(svg("text", { class: "tick", x: L - 7, y: y + 4, "text-anchor": "end" }, String(v)));
    });
    const bw = pw / BINS;
    counts.forEach((c, i) => {
      const lo = i / BINS, hi = (i + 1) / BINS;
      const h = (c / max) * ph;
      const bar = svg("rect", { class: "bar" + (hi > thr ? " hot" : ""), x: L + i * bw + 1,
        y: T + ph - h, width: Math.max(1, bw - 2), height: Math.max(h, c > 0 ? 1 : 0),
        "data-bin": i, "data-count": c });
      bar.appendChild(svg("title", {}, t("results.bin", lo.toFixed(2), hi.toFixed(2), c)));
      root.appendChild(bar);
      if (c > 0) {
        root.appendChild(svg("text", { class: "count", x: L + i * bw + bw / 2, y: T + ph - h - 3,
          "text-anchor": "middle" }, String(c)));
      }
    });
    root.appendChild(svg("line", { class: "axis", x1: L, y1: T + ph, x2: L + pw, y2: T + ph }));
    root.appendChild(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: T + ph }));
    [0, 0.25, 0.5, 0.75, 1].forEach((v) => {
      const x = L + v * pw;
      root.appendChild(svg("line", { class: "axis", x1: x, y1: T + ph, x2: x, y2: T + ph + 4 }));
      root.appendChild(svg("text", { class: "tick", x: x, y: T + ph + 16, "text-anchor": "middle" }, String(v)));
    });
    root.appendChild(svg("text", { class: "label", x: L + pw / 2, y: H - 4, "text-anchor": "middle" }, t("results.axisX")));
    root.appendChild(svg("text", { class: "label", x: 12, y: T + ph / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + ph / 2) + ")" }, t("results.axisY")));
    const tx = L + Math.min(1, Math.max(0, thr)) * pw;
    root.appendChild(svg("line", { class: "thr", id: "threshold-line", x1: tx, y1: T - 6, x2: tx, y2: T + ph,
      "data-threshold": thr }));
    root.appendChild(svg("text", { class: "thr-label", x: Math.min(tx, L + pw - 2), y: T - 9,
      "text-anchor": tx > L + pw - 60 ? "end" : "middle" }, t("results.threshold", thr)));
    box.appendChild(root);
  }

  function renderResults(r) {
    $("results").hidden = false;
    $("t-scored").textContent = fmtInt(r.totals.scored);
    $("t-flagged").textContent = fmtInt(r.totals.flagged);
    $("t-rate").textContent = (r.totals.fraud_rate * 100).toFixed(2) + "%";
    const body = $("fraud-rows");
    body.replaceChildren();
    r.latest_fraud.forEach((f) => {
      const tr = document.createElement("tr");
      const id = document.createElement("td");
      id.className = "id";
      id.textContent = f.transaction_id;
      const sc = document.createElement("td");
      sc.className = "num";
      sc.textContent = Number(f.score).toFixed(4);
      sc.title = String(f.score);
      const tm = document.createElement("td");
      tm.className = "num";
      tm.textContent = new Date(f.created_at).toLocaleString(lang === "ru" ? "ru-RU" : "en-US",
        { dateStyle: "short", timeStyle: "medium" });
      tm.title = f.created_at;
      tr.append(id, sc, tm);
      body.appendChild(tr);
    });
    $("fraud-table").hidden = r.latest_fraud.length === 0;
    $("fraud-empty").hidden = r.latest_fraud.length > 0;
    drawHistogram(r.scores, typeof r.threshold === "number" ? r.threshold : threshold);
    const st = $("results-state");
    st.classList.remove("bad");
    st.textContent = t("results.updated", new Date().toLocaleTimeString(lang === "ru" ? "ru-RU" : "en-US"));
    st.dataset.state = "ok";
  }

  let lastHealth = null;

  function renderHealth(h) {
    document.querySelectorAll("#health li").forEach((li) => {
      const item = h[li.dataset.key] || { ok: null, detail: "" };
      const dot = li.querySelector(".dot");
      dot.classList.toggle("ok", item.ok === true);
      dot.classList.toggle("bad", item.ok === false);
      li.dataset.ok = String(item.ok);
      li.querySelector(".detail").textContent = item.ok === null ? t("health.unknown") : item.detail;
    });
  }

  async function refreshHealth() {
    try {
      lastHealth = await getJSON("/api/health");
      renderHealth(lastHealth);
    } catch (e) {
      lastHealth = null;
    }
  }

  async function refresh() {
    const st = $("results-state");
    try {
      lastResults = await getJSON("/api/results");
      renderResults(lastResults);
    } catch (e) {
      st.textContent = t("results.error", e.message);
      st.classList.add("bad");
      st.dataset.state = "error";
    }
    refreshHealth();
  }

  function setAuto(on) {
    if (autoTimer) { clearInterval(autoTimer); autoTimer = null; }
    if (on) { autoTimer = setInterval(refresh, AUTO_MS); refresh(); }
  }

  // ---- wiring ------------------------------------------------------------------------
  function init() {
    applyLang(pickLang());
    document.querySelectorAll("[data-lang]").forEach((b) => {
      b.addEventListener("click", () => {
        try { localStorage.setItem("lang", b.dataset.lang); } catch (e) { /* private mode */ }
        applyLang(b.dataset.lang);
      });
    });
    $("file").addEventListener("change", (ev) => choose(ev.target.files[0]));
    const drop = $("drop");
    ["dragenter", "dragover"].forEach((n) => drop.addEventListener(n, (ev) => {
      ev.preventDefault();
      drop.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((n) => drop.addEventListener(n, () => drop.classList.remove("over")));
    drop.addEventListener("drop", (ev) => {
      ev.preventDefault();
      if (ev.dataTransfer && ev.dataTransfer.files.length) choose(ev.dataTransfer.files[0]);
    });
    $("send").addEventListener("click", send);
    $("view").addEventListener("click", refresh);
    $("auto").addEventListener("change", (ev) => setAuto(ev.target.checked));
    getJSON("/api/config").then((c) => {
      threshold = c.threshold;
      maxUpload = c.max_upload_bytes;
      $("version").textContent = "interface " + c.version;
    }).catch(() => {});
    refreshHealth();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
