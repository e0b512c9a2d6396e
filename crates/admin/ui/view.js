// switchyard dashboard: building the DOM. Everything that comes from the API
// goes in as text (textContent / text nodes), never as markup.
"use strict";

SY.el = (tag, props, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k === "on") for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === "width") e.style.width = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
};

SY.fmt = {
  weights(traffic) {
    return Object.entries(traffic || {}).map(([p, w]) => p + " " + SY.fmt.num(w) + "%").join(" · ");
  },
  num(n) {
    if (n === null || n === undefined) return "–";
    if (Number.isInteger(n)) return String(n);
    // Two significant digits below 1 (a limit of 0.005 stays 0.005), else two decimals.
    return Math.abs(n) < 1 ? String(Number(n.toPrecision(2))) : String(Math.round(n * 100) / 100);
  },
  pct(r) {
    return r === null || r === undefined ? "–" : SY.fmt.num(r * 100) + "%";
  },
  ms(v) {
    return v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) + " ms" : Math.round(v) + " ms";
  },
  time(rfc3339) {
    const d = new Date(rfc3339);
    return isNaN(d) ? String(rfc3339) : d.toLocaleTimeString([], { hour12: false });
  },
};

// A colour class per pool: blue and green by name, the others by position.
SY.poolClass = (pool, index) =>
  pool === "blue" ? "pool-blue" : pool === "green" ? "pool-green" : "pool-" + (index % 4);

SY.view = (() => {
  const { el, fmt } = SY;

  function header(s) {
    const mode = s.active ? "active: " + s.active : "split";
    return el("header", { class: "svc-head" },
      el("h2", { text: s.name }),
      el("span", { class: "badge", title: "traffic version (If-Match)", text: "v" + s.version }),
      el("span", { class: "badge mode", text: mode }),
      s.sticky ? el("span", { class: "badge", title: "sticky canary", text: "sticky: " + describeSticky(s.sticky) }) : null);
  }

  // `{"cookie": NAME}` or `{"header": NAME}`.
  function describeSticky(st) {
    return Object.entries(st).map(([k, v]) => k + " " + v).join(", ");
  }

  function weights(s) {
    const pools = Object.keys(s.traffic);
    const bar = el("div", { class: "bar", role: "img", "aria-label": "traffic " + fmt.weights(s.traffic) });
    pools.forEach((p, i) => {
      const w = s.traffic[p];
      if (w > 0) bar.append(el("span", { class: "seg " + SY.poolClass(p, i), width: w + "%", title: p + " " + fmt.num(w) + "%" },
        w >= 12 ? p + " " + fmt.num(w) + "%" : ""));
    });
    const legend = el("div", { class: "legend" },
      pools.map((p, i) => el("span", { class: "key" }, el("i", { class: "dot " + SY.poolClass(p, i) }), p + " " + fmt.num(s.traffic[p]) + "%")));
    return el("div", { class: "weights" }, bar, legend);
  }

  function sparkline(series) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 100 24");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    svg.setAttribute("aria-hidden", "true");
    if (!series || series.length < 2) return svg;
    const max = Math.max(1, ...series.map((p) => p.requests));
    const x = (i) => (i * 100) / (series.length - 1);
    const line = (key, cls) => {
      const pl = document.createElementNS(NS, "polyline");
      pl.setAttribute("points", series.map((p, i) => x(i).toFixed(1) + "," + (23 - (p[key] * 22) / max).toFixed(1)).join(" "));
      pl.setAttribute("class", cls);
      svg.append(pl);
    };
    line("requests", "spark-req");
    if (series.some((p) => p.errors > 0)) line("errors", "spark-err");
    return svg;
  }

  function backend(b) {
    const state = b.healthy ? "up" : "down";
    return el("li", { class: "backend " + state, "data-backend": b.address, title: b.address + ": " + (b.healthy ? "healthy" : "down") },
      el("i", { class: "dot " + state }), b.address, " ", el("span", { class: "state", text: b.healthy ? "up" : "down" }),
      b.inflight ? el("span", { class: "muted", text: " " + b.inflight + " in flight" }) : null);
  }

  // `stats`: the 60 s figures; `series`: pool → 5 min series for the sparkline.
  function pools(s, stats, series) {
    const rows = Object.entries(s.pools).map(([name, p], i) => {
      const st = (stats && stats.pools && stats.pools[name]) || null;
      const total = p.backends.length;
      const health = el("span", { class: total === 0 || p.healthy === 0 ? "bad" : p.healthy === total ? "ok" : "warn", text: p.healthy + "/" + total });
      return el("tr", { "data-pool": name },
        el("th", { scope: "row" }, el("i", { class: "dot " + SY.poolClass(name, i) }), name),
        el("td", {}, health),
        el("td", {}, el("ul", { class: "backends" }, p.backends.map(backend))),
        el("td", { class: "num", text: st ? fmt.num(st.rps) : "–" }),
        el("td", { class: "num" + (st && st.errors > 0 ? " bad" : ""), text: st ? fmt.pct(st.error_rate) : "–" }),
        el("td", { class: "num", text: st ? fmt.ms(st.p50_ms) : "–" }),
        el("td", { class: "num", text: st ? fmt.ms(st.p99_ms) : "–" }),
        el("td", {}, sparkline(series && series[name])));
    });
    const head = el("tr", {}, ["pool", "healthy", "backends", "req/s", "errors", "p50", "p99", "requests, 5 min"].map((h) => el("th", { scope: "col", text: h })));
    return el("div", { class: "scroll" }, el("table", { class: "pools" }, el("thead", {}, head), el("tbody", {}, rows)));
  }

  function history(events) {
    if (!events) return el("p", { class: "muted", text: "history loading…" });
    if (events.length === 0) return el("p", { class: "muted", text: "no traffic changes yet" });
    const rows = events.slice(0, 5).map((e) =>
      el("tr", { "data-version": e.version },
        el("td", { class: "num", text: "v" + e.version }),
        el("td", { text: fmt.time(e.at), title: e.at }),
        el("td", { text: e.kind + (e.forced ? " (forced)" : "") }),
        el("td", { class: "change", text: fmt.weights(e.from) + " → " + fmt.weights(e.to) }),
        el("td", { text: e.actor }),
        el("td", { class: "reason", text: e.reason })));
    const head = el("tr", {}, ["", "at", "kind", "from → to", "actor", "reason"].map((h) => el("th", { scope: "col", text: h })));
    return el("details", { class: "history", open: true },
      el("summary", { text: "latest changes" }),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
  }

  return { header, weights, pools, history };
})();
