// The nta dashboard: one server-sent event stream (/api/events) carries window
// results (for wide windows, the leading ones of each close), alerts, reloads
// and a status snapshot every second. On connect the
// server replays its history first, so an opened or reloaded page starts with
// charts already drawn. Windows are picked by their shape (key and aggregates)
// from the status snapshot, so a pipeline without one of them shows "no data"
// there instead of breaking the page.
"use strict";

(function () {
  const HISTORY_S = 15 * 60;
  const TOP_N = 10;
  const MAX_ALERTS = 200;
  const RENDER_MS = 500;

  const state = {
    token: sessionStorage.getItem("nta-token") || "",
    paused: false,
    dirty: true,
    status: null,
    windows: {},          // name -> window meta from the status snapshot
    bits: new Map(),      // window end (ms) -> {bits, recs}
    recs: [],             // [time_s, records/s] from status
    proto: new Map(),     // end (ms) -> {proto: bytes}
    protos: new Set(),
    latest: {},           // window name -> {end, rows: Map(keyText -> result)}
    topk: null,           // {end, field, rows} from a top-k aggregate, when the pipeline has one
    alerts: [],
    alertSeenAt: new WeakMap(), // alert -> when it was first drawn (for the tests' latency check)
    lastReload: null,
    es: null,
  };

  window.ntaState = state; // for the browser tests and for poking at in a console
  const $ = (sel) => document.querySelector(sel);
  const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  function si(v, unit) {
    const a = Math.abs(v);
    const p = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]].find(([m]) => a >= m);
    return p ? fmt.format(v / p[0]) + " " + p[1] + unit : fmt.format(v) + " " + unit;
  }

  function keyText(key) {
    if (!key) return "";
    const vals = Object.values(key);
    return vals.length ? vals.join(" → ") : "(all)";
  }

  function timeText(ms) {
    if (ms == null) return "–";
    return new Date(ms).toISOString().slice(11, 19);
  }

  // ---- HTTP with the token ----

  function authHeaders() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: authHeaders() }, opts || {}));
    if (r.status === 401) askToken();
    let body = null;
    try { body = await r.json(); } catch (e) { body = { error: "HTTP " + r.status }; }
    return { status: r.status, body };
  }

  function askToken() {
    const f = $("#token-form");
    f.hidden = false;
    $("#token-input").focus();
  }

  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("nta-token", state.token);
    $("#token-form").hidden = true;
    connect();
  });

  // ---- windows by shape ----

  function hasAgg(w, agg) { return w.aggs.indexOf(agg) >= 0; }
  function keyed(w, fields) {
    return w.key.length === fields.length && fields.every((f, i) => w.key[i] === f);
  }
  // The window for a panel: the conventional name if it has the right shape,
  // else the first window that does.
  function pick(name, test) {
    const ws = state.windows;
    if (ws[name] && test(ws[name])) return ws[name];
    return Object.values(ws).find(test) || null;
  }
  function sources() {
    return {
      bits: pick("traffic", (w) => w.key.length === 0 && hasAgg(w, "sum_bytes")),
      proto: pick("by_proto", (w) => keyed(w, ["proto"]) && hasAgg(w, "sum_bytes")),
      talkers: pick("by_src", (w) => keyed(w, ["src_ip"]) && hasAgg(w, "sum_bytes")),
      fanout: pick("fanout", (w) => keyed(w, ["src_ip"]) && hasAgg(w, "distinct_dst_port")),
      fanin: pick("by_dst", (w) => keyed(w, ["dst_ip"]) && hasAgg(w, "distinct_src_ip")),
    };
  }

  // ---- events ----

  function onWindow(r) {
    const meta = state.windows[r.window];
    const sizeS = meta ? meta.size_ms / 1000 : (r.end - r.start) / 1000;
    // Top-k aggregates ("topk_<measure>_by_<field>": [{key, value, share, error}])
    // feed the talkers table directly when the pipeline computes them.
    for (const f in r) {
      if (f.startsWith("topk_") && Array.isArray(r[f]) && f.indexOf("src") >= 0) {
        if (!state.topk || r.end >= state.topk.end) state.topk = { end: r.end, field: f, window: r.window, rows: r[f] };
      }
    }
    if (r.key && Object.keys(r.key).length === 0 && r.sum_bytes != null) {
      state.bits.set(r.end, { window: r.window, bits: (r.sum_bytes * 8) / sizeS, recs: r.count / sizeS });
      trim(state.bits, r.end);
    }
    if (r.key && r.key.proto != null && r.sum_bytes != null) {
      let row = state.proto.get(r.end);
      if (!row) { row = {}; state.proto.set(r.end, row); }
      row[r.key.proto] = { window: r.window, bytes: r.sum_bytes };
      state.protos.add(String(r.key.proto));
      trim(state.proto, r.end);
    }
    if (r.key && Object.keys(r.key).length > 0) {
      let l = state.latest[r.window];
      if (!l || r.end > l.end) { l = { end: r.end, rows: new Map() }; state.latest[r.window] = l; }
      if (r.end === l.end) l.rows.set(keyText(r.key), r);
    }
    state.dirty = true;
  }

  function trim(map, newest) {
    for (const k of map.keys()) if (k < newest - HISTORY_S * 1000) map.delete(k);
  }

  function onStatus(s) {
    state.status = s;
    const ws = {};
    for (const w of s.windows || []) ws[w.name] = w;
    state.windows = ws;
    if (s.time != null) {
      state.recs.push([s.time / 1000, s.rate_in]);
      while (state.recs.length && state.recs[0][0] < s.time / 1000 - HISTORY_S) state.recs.shift();
    }
    state.dirty = true;
  }

  function onAlert(a) {
    state.alerts.unshift(a);
    if (state.alerts.length > MAX_ALERTS) state.alerts.pop();
    state.dirty = true;
  }

  function onReload(r) {
    state.lastReload = r;
    state.dirty = true;
  }

  function connect() {
    if (state.es) state.es.close();
    const url = "/api/events" + (state.token ? "?token=" + encodeURIComponent(state.token) : "");
    const es = new EventSource(url);
    state.es = es;
    const conn = $("#conn");
    es.onopen = () => { conn.textContent = "live"; conn.className = "conn live"; };
    es.onerror = async () => {
      conn.textContent = "reconnecting…";
      conn.className = "conn down";
      // EventSource hides the status code: ask the API whether a token is missing.
      const r = await api("/api/status");
      if (r.status === 401) es.close();
    };
    const on = (name, fn) => es.addEventListener(name, (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      fn(data);
    });
    on("window", onWindow);
    on("status", onStatus);
    on("alert", onAlert);
    on("reload", onReload);
    // A wide window (keyed by host, say) comes as one "top" frame per close:
    // its leading results by every aggregate, which is all the tables show.
    on("top", (t) => t.results.forEach(onWindow));
    loadRules();
  }

  async function loadRules() {
    const r = await api("/api/rules");
    if (r.status === 200 && r.body.last_reload) state.lastReload = r.body.last_reload;
    state.dirty = true;
  }

  // ---- charts ----

  const charts = {};
  window.ntaCharts = charts; // for the browser tests and for poking at in a console

  const axisStyle = { stroke: "#9aa4b2", grid: { stroke: "#2c3442" }, ticks: { stroke: "#2c3442" } };
  const COLORS = ["#5fb3f9", "#f2c14e", "#6cc070", "#f25f5c", "#b48ef0", "#4fd1c5", "#f08ec7"];
  const PROTO_NAMES = { 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6" };

  function makeChart(id, series, unit) {
    const el = document.getElementById(id);
    const width = Math.max(300, el.clientWidth || 400);
    const opts = {
      width, height: 200,
      series: [{}].concat(series.map((s, i) => ({
        // The two record-rate series share one time axis at different
        // instants: each is drawn as a line across the other's gaps.
        label: s, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true,
        value: (u, v) => (v == null ? "–" : si(v, unit)),
      }))),
      axes: [Object.assign({}, axisStyle),
             Object.assign({ values: (u, vals) => vals.map((v) => si(v, unit)), size: 90 }, axisStyle)],
      scales: { x: { time: true } },
      legend: { live: true },
    };
    return new uPlot(opts, [[]].concat(series.map(() => [])), el);
  }

  function ensureCharts() {
    if (!charts.bits) charts.bits = makeChart("c-bits", ["bits/s"], "bit/s");
    if (!charts.recs) charts.recs = makeChart("c-recs", ["records/s (1 s)", "records/s (window)"], "rec/s");
    const protos = Array.from(state.protos).sort((a, b) => a - b);
    const want = protos.map((p) => PROTO_NAMES[p] || "proto " + p).join("|");
    if (!charts.proto || charts.proto.protoKey !== want) {
      if (charts.proto) charts.proto.destroy();
      charts.proto = makeChart("c-proto", protos.map((p) => PROTO_NAMES[p] || "proto " + p), "B");
      charts.proto.protoKey = want;
      charts.proto.protos = protos;
    }
  }

  function setNoData(panel, empty) {
    const p = document.querySelector(panel + " .nodata");
    if (p) p.hidden = !empty;
  }

  function renderCharts(src) {
    ensureCharts();
    const bitsWin = src.bits ? src.bits.name : null;
    const ends = Array.from(state.bits.keys()).filter((e) => state.bits.get(e).window === bitsWin).sort((a, b) => a - b);
    charts.bits.setData([ends.map((e) => e / 1000), ends.map((e) => state.bits.get(e).bits)]);
    setNoData("#p-bits", ends.length === 0);

    // Records per second: the 1 s status samples, and the window's own count
    // per second at each window end (event time), on one time axis.
    const xs = state.recs.map((r) => r[0]).concat(ends.map((e) => e / 1000));
    const order = xs.map((x, i) => i).sort((a, b) => xs[a] - xs[b]);
    const live = [], win = [], xsorted = [];
    for (const i of order) {
      xsorted.push(xs[i]);
      if (i < state.recs.length) { live.push(state.recs[i][1]); win.push(null); }
      else { live.push(null); win.push(state.bits.get(ends[i - state.recs.length]).recs); }
    }
    charts.recs.setData([xsorted, live, win]);
    setNoData("#p-recs", xsorted.length === 0);

    const protoWin = src.proto ? src.proto.name : null;
    const pends = Array.from(state.proto.keys()).sort((a, b) => a - b);
    const pdata = [pends.map((e) => e / 1000)];
    for (const p of charts.proto.protos) {
      pdata.push(pends.map((e) => {
        const c = state.proto.get(e)[p];
        return c && c.window === protoWin ? c.bytes : null;
      }));
    }
    charts.proto.setData(pdata);
    setNoData("#p-proto", pends.length === 0 || !protoWin);

    for (const s of document.querySelectorAll("[data-src]")) {
      const w = src[s.dataset.src];
      s.textContent = w ? "(" + w.name + ", " + w.size_ms / 1000 + " s)" : "";
    }
  }

  // ---- tables ----

  function fillTable(sel, rows) {
    const tb = document.querySelector(sel + " tbody");
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement("tr");
      if (r.cls) tr.className = r.cls;
      for (const c of r.cells) {
        const td = document.createElement("td");
        if (c && c.node) td.appendChild(c.node);
        else td.textContent = c && c.text != null ? c.text : c;
        if (c && c.num) td.className = "num";
        if (c && c.title) td.title = c.title;
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tb.replaceChildren(frag);
  }

  function bar(frac) {
    const d = document.createElement("div");
    d.className = "bar";
    d.style.width = Math.max(1, Math.round(frac * 100)) + "%";
    return { node: d };
  }

  function renderTalkers(src) {
    let rows = [];
    if (state.topk) {
      rows = state.topk.rows.slice(0, TOP_N).map((t, i) => ({ cells: [
        i + 1, { text: t.key, title: t.key }, { text: si(t.value, "B"), num: 1 },
        { text: t.share != null ? fmt.format(t.share * 100) + " %" : "–", num: 1 },
        { text: t.error != null ? "± " + fmt.format(t.error) : "–", num: 1 }] }));
      document.querySelector("#t-talkers thead th:last-child").textContent = "error";
      document.querySelector('[data-src="talkers"]').textContent = "(" + state.topk.window + ", top-k)";
    } else if (src.talkers && state.latest[src.talkers.name]) {
      const all = Array.from(state.latest[src.talkers.name].rows.values());
      const total = all.reduce((a, r) => a + r.sum_bytes, 0) || 1;
      all.sort((a, b) => b.sum_bytes - a.sum_bytes);
      rows = all.slice(0, TOP_N).map((r, i) => ({ cells: [
        i + 1, { text: keyText(r.key), title: keyText(r.key) }, { text: si(r.sum_bytes, "B"), num: 1 },
        { text: fmt.format((r.sum_bytes / total) * 100) + " %", num: 1 }, { text: fmt.format(r.count), num: 1 }] }));
    }
    fillTable("#t-talkers", rows);
    setNoData("#p-talkers", rows.length === 0);
  }

  function renderDistinct(panel, table, w, field) {
    let rows = [];
    const l = w && state.latest[w.name];
    if (l) {
      const all = Array.from(l.rows.values()).filter((r) => r[field] != null);
      all.sort((a, b) => b[field] - a[field]);
      const max = all.length ? all[0][field] || 1 : 1;
      rows = all.slice(0, TOP_N).map((r) => ({ cells: [
        { text: keyText(r.key), title: keyText(r.key) }, { text: fmt.format(r[field]), num: 1 }, bar(r[field] / max)] }));
    }
    fillTable(table, rows);
    setNoData(panel, rows.length === 0);
  }

  function renderHealth() {
    const s = state.status;
    if (!s || s.starting) return;
    const windows = (s.windows || []).reduce((a, w) => a + w.windows, 0);
    const rows = [
      ["records/s in", fmt.format(s.rate_in)],
      ["records in", fmt.format(s.records_in)],
      ["consumer lag", s.lag == null ? "–" : fmt.format(s.lag)],
      ["late records", fmt.format(s.late)],
      ["bad records", fmt.format(s.bad)],
      ["windows emitted", fmt.format(windows)],
      ["results out", fmt.format(s.results_out)],
      ["watermark", timeText(s.watermark)],
      ["mode", s.mode + " (" + s.input_topic + " → " + s.output_topic + ")"],
      ["dashboard clients", String(s.http ? s.http.clients : "–")],
    ];
    if (s.producer) rows.push(["output pending", fmt.format(s.producer.pending)]);
    if (s.note) rows.push(["last error", s.note]);
    fillTable("#t-health", rows.map((r) => ({ cells: [r[0], { text: r[1], num: 1 }] })));
  }

  function renderAlerts() {
    const now = Date.now();
    const rows = state.alerts.map((a) => {
      if (!state.alertSeenAt.has(a)) state.alertSeenAt.set(a, now);
      const sev = document.createElement("span");
      sev.className = "sev " + String(a.severity || "info").toLowerCase();
      sev.textContent = a.severity || "?";
      const k = keyText(a.key);
      return { cls: a.state === "cleared" ? "cleared" : "", cells: [
        timeText(a.end != null ? a.end : a.raised_at), { node: sev }, a.rule || "?", { text: k, title: a.message || k },
        { text: a.value != null ? fmt.format(a.value) : "–", num: 1 },
        { text: a.threshold != null ? fmt.format(a.threshold) : "–", num: 1 }, a.state || ""] };
    });
    fillTable("#t-alerts", rows);
    setNoData("#p-alerts", rows.length === 0);
  }

  function renderRules() {
    const rs = state.status && state.status.rules;
    const sum = $("#rules-summary");
    const rules = rs && Array.isArray(rs.rules) ? rs.rules : [];
    if (!rs) {
      sum.textContent = "no rules loaded";
    } else {
      const q = rules.filter((r) => r.quarantined).length;
      sum.textContent = "generation " + (rs.generation != null ? rs.generation : "?") + ", " +
        rules.length + " rule" + (rules.length === 1 ? "" : "s") + (q ? ", " + q + " quarantined" : "");
    }
    const lr = state.lastReload;
    const res = $("#reload-result");
    if (lr) {
      res.className = lr.ok ? "okmsg" : "err";
      res.textContent = "last reload: " + (lr.ok ? "ok" : "failed: " + (lr.error || "unknown error")) +
        (lr.generation != null ? " (generation " + lr.generation + ")" : "");
    }
    fillTable("#t-rules", rules.map((r) => ({ cls: r.quarantined ? "cleared" : "", cells: [
      { text: r.name, title: r.error || r.name }, r.window || "", r.severity || "",
      r.quarantined ? "quarantined" : (r.state || "active"), { text: fmt.format(r.errors || 0), num: 1 }] })));
  }

  function render() {
    if (state.paused || !state.dirty) return;
    state.dirty = false;
    const src = sources();
    renderCharts(src);
    renderTalkers(src);
    renderDistinct("#p-fanout", "#t-fanout", src.fanout, "distinct_dst_port");
    renderDistinct("#p-fanin", "#t-fanin", src.fanin, "distinct_src_ip");
    renderHealth();
    renderAlerts();
    renderRules();
  }

  // ---- controls ----

  function togglePause() {
    state.paused = !state.paused;
    const b = $("#pause");
    b.setAttribute("aria-pressed", String(state.paused));
    b.textContent = state.paused ? "Resume (p)" : "Pause (p)";
    state.dirty = true;
  }
  $("#pause").addEventListener("click", togglePause);
  document.addEventListener("keydown", (ev) => {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    if (ev.key === "p" && !ev.ctrlKey && !ev.metaKey && !ev.altKey) { ev.preventDefault(); togglePause(); }
  });

  $("#reload").addEventListener("click", async () => {
    const res = $("#reload-result");
    res.className = "";
    res.textContent = "reloading…";
    const r = await api("/api/reload", { method: "POST" });
    if (r.status === 200 || r.status === 422) {
      state.lastReload = r.body;
    } else {
      state.lastReload = { ok: false, error: r.body.error || "HTTP " + r.status };
    }
    state.dirty = true;
    render();
  });

  window.addEventListener("resize", () => {
    for (const k in charts) {
      const el = charts[k].root.parentElement;
      charts[k].setSize({ width: Math.max(300, el.clientWidth), height: 200 });
    }
  });

  setInterval(render, RENDER_MS);
  connect();
})();
