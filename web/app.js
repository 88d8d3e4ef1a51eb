// The upload page: sends a CSV to POST /api/uploads, follows GET /api/uploads/<id> until
// Kafka has acknowledged every valid row, and shows results and pipeline health. Every value
// that comes from data is put into the page with textContent or an SVG text node, never as
// markup (a merchant called <script> stays text).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
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
    if (upRes) renderUpRes();
    if (detailId) renderDetail();
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
    if (lastUpload && lastUpload.id && lastUpload.acked > 0) followResults(lastUpload.id);
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
    upId = null;
    upRes = null;
    if (upTimer) { clearTimeout(upTimer); upTimer = null; }
    renderUpRes();
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

  // Bin edges for scores: most scores sit near 0 and the interesting ones near 1, so the
  // bins are fine near both ends, and the threshold is an edge of its own (the bins from it
  // up hold exactly the flagged scores). Bars are equal width; the count axis is
  // logarithmic so a bin of 1 beside a bin of 90 still shows.
  function binEdges(thr) {
    const e = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1];
    if (thr > 0 && thr < 1 && e.indexOf(thr) < 0) e.push(thr);
    return e.sort((a, b) => a - b);
  }

  // The bin of a score: [e[i], e[i+1]), the last bin closed at 1.
  function binOf(edges, s) {
    for (let i = edges.length - 2; i >= 0; i--) if (s >= edges[i]) return i;
    return 0;
  }

  function fmtEdge(v) {
    return v === 0 || v === 1 ? String(v) : String(Number(v.toPrecision(3)));
  }

  function drawHistogram(scores, thr) {
    const box = $("hist");
    box.replaceChildren();
    $("hist-title").textContent = t("results.hist", scores.length);
    $("hist-empty").hidden = scores.length > 0;
    $("hist-flagged").textContent = "";
    if (scores.length === 0) return;
    const edges = binEdges(thr);
    const nb = edges.length - 1;
    const counts = new Array(nb).fill(0);
    scores.forEach((s) => { counts[binOf(edges, Math.min(1, Math.max(0, s)))]++; });
    const flagged = scores.filter((s) => s >= thr).length;
    $("hist-flagged").textContent = t("results.histFlagged", flagged, scores.length);
    const W = 620, H = 270, L = 44, R = 12, T = 24, B = 56;
    const pw = W - L - R, ph = H - T - B;
    const max = Math.max(1, ...counts);
    const ymax = Math.log10(max + 1);
    const yOf = (c) => T + ph - (Math.log10(c + 1) / ymax) * ph;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img",
      "aria-label": t("results.hist", scores.length) });
    // y ticks on the log axis: 0, 1, 10, 100 up to the largest count.
    [0, 1, 10, 100, 1000].filter((v) => v <= max).forEach((v) => {
      const y = yOf(v);
      root.appendChild(svg("line", { class: "axis", x1: L - 4, y1: y, x2: L, y2: y }));
      root.appendChild(svg("text", { class: "tick", x: L - 7, y: y + 4, "text-anchor": "end" }, String(v)));
    });
    const bw = pw / nb;
    counts.forEach((c, i) => {
      const lo = edges[i], hi = edges[i + 1];
      const y = yOf(c);
      const bar = svg("rect", { class: "bar" + (lo >= thr ? " hot" : ""), x: L + i * bw + 1,
        y: y, width: Math.max(1, bw - 2), height: Math.max(T + ph - y, c > 0 ? 1 : 0),
        "data-bin": i, "data-lo": lo, "data-hi": hi, "data-count": c });
      bar.appendChild(svg("title", {}, t("results.bin", fmtEdge(lo), fmtEdge(hi), c)));
      root.appendChild(bar);
      if (c > 0) {
        root.appendChild(svg("text", { class: "count", x: L + i * bw + bw / 2, y: y - 3,
          "text-anchor": "middle" }, String(c)));
      }
    });
    root.appendChild(svg("line", { class: "axis", x1: L, y1: T + ph, x2: L + pw, y2: T + ph }));
    root.appendChild(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: T + ph }));
    edges.forEach((v, i) => {
      const x = L + i * bw;
      root.appendChild(svg("line", { class: "axis", x1: x, y1: T + ph, x2: x, y2: T + ph + 4 }));
      root.appendChild(svg("text", { class: "tick", x: x, y: T + ph + 14, "text-anchor": "end",
        transform: "rotate(-40 " + x + " " + (T + ph + 14) + ")" }, fmtEdge(v)));
    });
    root.appendChild(svg("text", { class: "label", x: L + pw / 2, y: H - 4, "text-anchor": "middle" }, t("results.axisX")));
    root.appendChild(svg("text", { class: "label", x: 12, y: T + ph / 2, "text-anchor": "middle",
      transform: "rotate(-90 12 " + (T + ph / 2) + ")" }, t("results.axisYlog")));
    const ti = edges.indexOf(thr);
    const tx = L + (ti >= 0 ? ti : nb) * bw;
    root.appendChild(svg("line", { class: "thr", id: "threshold-line", x1: tx, y1: T - 6, x2: tx, y2: T + ph,
      "data-threshold": thr }));
    root.appendChild(svg("text", { class: "thr-label", x: Math.min(tx, L + pw - 2), y: T - 10,
      "text-anchor": tx > L + pw - 60 ? "end" : "middle" }, t("results.threshold", thr)));
    box.appendChild(root);
  }

  // ---- transactions: table rows, reasons, detail view ---------------------------------
  function td(text, cls) {
    const el = document.createElement("td");
    if (cls) el.className = cls;
    el.textContent = text;
    return el;
  }

  function fmtMoney(v) {
    return Number(v).toLocaleString(lang === "ru" ? "ru-RU" : "en-US",
      { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function fmtTime(f) {
    if (f.transaction_time) return f.transaction_time;
    if (!f.created_at) return "";
    return new Date(f.created_at).toLocaleString(lang === "ru" ? "ru-RU" : "en-US",
      { dateStyle: "short", timeStyle: "medium" });
  }

  function reasonList(f) {
    return f.reasons && Array.isArray(f.reasons.top) ? f.reasons.top : [];
  }

  // The reasons that push towards fraud, as sentences (at most n).
  function topReasons(f, n) {
    return reasonList(f).filter((r) => r.contribution > 0).slice(0, n)
      .map((r) => window.Reasons.text(r.feature, r.value, f, t, lang));
  }

  // One row of a fraud table: time, amount, merchant, category, customer, score, the top
  // reasons and a Details button. rowNo (optional) leads for an upload's rows.
  function fraudRow(f, rowNo) {
    const tr = document.createElement("tr");
    tr.dataset.id = f.transaction_id;
    if (rowNo !== undefined) tr.appendChild(td(rowNo === null ? "" : String(rowNo), "num"));
    const noDetails = f.transaction_time === null && f.amount === null && f.merchant === null;
    const tm = td(fmtTime(f), "num");
    tm.title = f.created_at || "";
    tr.appendChild(tm);
    if (noDetails) {
      const na = td(t("results.noDetails"), "na");
      na.colSpan = 4;
      tr.appendChild(na);
    } else {
      tr.appendChild(td(f.amount === null ? "" : fmtMoney(f.amount), "num"));
      tr.appendChild(td(f.merchant || "", "txt"));
      tr.appendChild(td(f.category || "", "txt"));
      tr.appendChild(td(f.customer || "", "txt"));
    }
    const sc = td(Number(f.score).toFixed(4), "num");
    sc.title = String(f.score);
    tr.appendChild(sc);
    const why = td("", "why");
    const items = topReasons(f, 3);
    if (items.length) {
      const ul = document.createElement("ul");
      items.forEach((x) => { const li = document.createElement("li"); li.textContent = x; ul.appendChild(li); });
      why.appendChild(ul);
    }
    tr.appendChild(why);
    const bt = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button";
    b.className = "link open";
    b.textContent = t("results.open");
    b.addEventListener("click", () => openDetail(f.transaction_id));
    bt.appendChild(b);
    tr.appendChild(bt);
    return tr;
  }

  let detailId = null;
  let detailData = null;

  function kv(dl, key, value) {
    const dt = document.createElement("dt");
    dt.textContent = t(key);
    const dd = document.createElement("dd");
    dd.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
    dd.dataset.key = key;
    dl.append(dt, dd);
  }

  function renderDetail() {
    const f = detailData;
    $("detail-id").textContent = detailId || "";
    const dl = $("detail-fields");
    dl.replaceChildren();
    const rows = $("detail-reason-rows");
    rows.replaceChildren();
    $("detail-bias").textContent = "";
    $("detail-no-reasons").hidden = true;
    if (!f) return;
    kv(dl, "detail.when", f.transaction_time);
    kv(dl, "detail.amount", f.amount === null ? null : fmtMoney(f.amount));
    kv(dl, "detail.merchant", f.merchant);
    kv(dl, "detail.category", f.category);
    kv(dl, "detail.customer", f.customer);
    kv(dl, "detail.city", f.city);
    kv(dl, "detail.state", f.us_state);
    kv(dl, "detail.score", f.score);
    kv(dl, "detail.flag", t(f.fraud_flag === 1 ? "detail.yes" : "detail.no"));
    kv(dl, "detail.stored", f.created_at);
    // The row as the scores CSV and fraudctl score number it: 0-based data row.
    if (f.upload_row !== null) kv(dl, "detail.upload", f.upload_row - 1);
    const list = reasonList(f);
    $("detail-no-reasons").hidden = list.length > 0;
    $("detail-reasons").hidden = list.length === 0;
    list.forEach((r) => {
      const tr = document.createElement("tr");
      tr.dataset.feature = r.feature;
      tr.appendChild(td(window.Reasons.text(r.feature, r.value, f, t, lang)));
      tr.appendChild(td(r.feature, "id"));
      tr.appendChild(td(r.value === null ? "null" : String(r.value), "num"));
      tr.appendChild(td((r.contribution > 0 ? "+" : "") + Number(r.contribution).toFixed(4),
        r.contribution > 0 ? "pos" : "neg"));
      rows.appendChild(tr);
    });
    if (f.reasons && typeof f.reasons.bias === "number") {
      $("detail-bias").textContent = t("detail.bias", Number(f.reasons.bias).toFixed(4));
    }
  }

  async function openDetail(id) {
    const dlg = $("detail");
    detailId = id;
    detailData = null;
    renderDetail();
    $("detail-state").textContent = t("detail.loading");
    $("detail-state").classList.remove("bad");
    if (!dlg.open) dlg.showModal();
    try {
      detailData = await getJSON("/api/transactions/" + encodeURIComponent(id));
      $("detail-state").textContent = "";
    } catch (e) {
      $("detail-state").textContent = t("detail.error", e.message);
      $("detail-state").classList.add("bad");
    }
    renderDetail();
  }

  // ---- the upload's own results ------------------------------------------------------
  let upId = null;
  let upRes = null;
  let upTimer = null;
  const UP_POLL_MS = 1500;

  function renderUpRes() {
    const r = upRes;
    $("upres").hidden = !r;
    if (!r) return;
    if (r.available === false) {
      // The mart has no upload columns yet (db_writer older than the interface).
      $("u-state").textContent = t("up.unavailable");
      $("u-download").hidden = true;
      $("u-flagged-wrap").hidden = true;
      $("u-no-flagged").hidden = true;
      return;
    }
    $("u-accepted").textContent = r.accepted === null ? "—" : fmtInt(r.accepted);
    $("u-scored").textContent = fmtInt(r.scored);
    $("u-flagged").textContent = fmtInt(r.flagged);
    const st = $("u-state");
    st.dataset.complete = String(r.complete);
    st.classList.toggle("good", r.complete === true);
    if (r.complete === true) st.textContent = t("up.complete", fmtInt(r.scored));
    else if (r.complete === null) st.textContent = t("up.partial", fmtInt(r.scored));
    else st.textContent = t("up.waiting", fmtInt(r.scored), fmtInt(r.accepted || 0));
    const dl = $("u-download");
    dl.hidden = r.scored === 0;
    dl.href = "/api/uploads/" + encodeURIComponent(r.upload_id) + "/scores.csv";
    dl.setAttribute("download", "scores-" + r.upload_id + ".csv");
    const body = $("u-flagged-rows");
    body.replaceChildren();
    r.flagged_rows.forEach((f) => body.appendChild(fraudRow(f, f.upload_row === null ? null : f.upload_row - 1)));
    $("u-flagged-wrap").hidden = r.flagged_rows.length === 0;
    $("u-no-flagged").hidden = !(r.complete === true && r.flagged === 0);
    const more = $("u-flagged-more");
    more.hidden = !r.flagged_truncated;
    more.textContent = r.flagged_truncated ? t("up.flaggedMore", fmtInt(r.flagged_rows.length), fmtInt(r.flagged)) : "";
  }

  async function followResults(id) {
    if (upTimer) { clearTimeout(upTimer); upTimer = null; }
    upId = id;
    try {
      const r = await getJSON("/api/uploads/" + encodeURIComponent(id) + "/results");
      if (upId !== id) return;
      upRes = r;
      renderUpRes();
      if (r.complete === true || r.available === false) return;
    } catch (e) {
      if (upId !== id) return;
      $("upres").hidden = false;
      $("u-state").textContent = t("up.error", e.message);
    }
    upTimer = setTimeout(() => followResults(id), UP_POLL_MS);
  }

  function renderResults(r) {
    $("results").hidden = false;
    $("t-scored").textContent = fmtInt(r.totals.scored);
    $("t-flagged").textContent = fmtInt(r.totals.flagged);
    $("t-rate").textContent = (r.totals.fraud_rate * 100).toFixed(2) + "%";
    const body = $("fraud-rows");
    body.replaceChildren();
    r.latest_fraud.forEach((f) => body.appendChild(fraudRow(f)));
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
    $("detail-close").addEventListener("click", () => { $("detail").close(); });
    $("detail").addEventListener("close", () => { detailId = null; detailData = null; });
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
