// switchyard dashboard: sign-in, the polling loop, and keeping the page in
// step with the API without rebuilding what did not change (so focus and
// open details survive a poll).
"use strict";

SY.app = (() => {
  const { el, api, view, fmt } = SY;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1500;
  const FIGURES = "?window=60s"; // the table's req/s, errors, p50, p99 (as `ctl status`)
  const SERIES = "?window=5m&step=10s"; // the sparkline; a new point every 10 s
  const SERIES_MS = 10000;
  const cards = new Map(); // service name → {root, parts: {name: key}, history, historyVersion}
  let role = null;
  let timer = null;
  let clusterSeen = true;
  let firstRender = true;
  let session = 0; // bumped on sign-out, so a poll under way does not go on

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.hidden = true), 5000);
  }

  function showLogin(message) {
    session++;
    again = false; // a refresh asked for before the sign-out is void
    clearTimeout(timer);
    SY.actions.close();
    $("login-message").textContent = message;
    $("login").hidden = false;
    $("services").hidden = true;
    $("token").value = "";
    $("token").focus();
    setConn("signed out", "warn");
  }

  function setConn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = "conn " + cls;
  }

  async function signIn() {
    try {
      const who = await api.get("/v1/whoami");
      role = who.role;
      $("whoami").textContent = who.actor === null ? "no token needed · operator" : who.actor + " · " + who.role;
      $("forget").hidden = !api.hasToken();
      $("login").hidden = true;
      $("services").hidden = false;
      document.body.classList.toggle("read-only", role !== "operator");
      poll();
    } catch (e) {
      if (e.status === 401) {
        showLogin(api.hasToken() ? "That token was refused: " + e.message + ". Type it again." : "This admin API needs a token.");
        api.setToken("");
      } else {
        setConn(e.message, "bad");
        timer = setTimeout(signIn, POLL_MS * 2);
      }
    }
  }

  // Replaces part `name` of a card only when its key changed.
  function patch(card, name, key, build) {
    if (card.parts[name] === key) return;
    card.parts[name] = key;
    const fresh = build();
    fresh.dataset.part = name;
    const old = card.root.querySelector(":scope > [data-part='" + name + "']");
    if (old) old.replaceWith(fresh);
    else card.root.append(fresh);
  }

  function cardOf(name) {
    let card = cards.get(name);
    if (!card) {
      card = { root: el("section", { class: "card svc", "data-service": name }), parts: {}, stats: null, series: null, seriesAt: 0, history: null, historyVersion: -1 };
      cards.set(name, card);
    }
    return card;
  }

  function render(s, now) {
    const card = cardOf(s.name);
    const stats = card.stats;
    const readOnly = role !== "operator";
    patch(card, "head", JSON.stringify([s.name, s.version, s.active, s.sticky]), () => view.header(s));
    patch(card, "weights", JSON.stringify(s.traffic), () => view.weights(s));
    patch(card, "actions", JSON.stringify([s.version, s.traffic, s.rollout && s.rollout.phase, s.rollback_to, readOnly]),
      () => SY.actions.bar(s, readOnly));
    patch(card, "pools", JSON.stringify([s.pools, stats, card.series]), () => view.pools(s, stats, card.series));
    const r = s.rollout;
    patch(card, "rollout", JSON.stringify([r, r ? Math.round(now / 1000) : 0]), () => (r ? SY.rollout.panel(r, now) : el("div", { hidden: true })));
    patch(card, "history", JSON.stringify([card.historyVersion, card.history && card.history.length]), () => view.history(card.history));
    return card.root;
  }

  async function series(s, card) {
    if (Date.now() - card.seriesAt < SERIES_MS) return;
    const st = await api.get(api.path("v1", "services", s.name, "stats") + SERIES);
    card.series = Object.fromEntries(Object.entries(st.pools).map(([p, v]) => [p, v.series]));
    card.seriesAt = Date.now();
  }

  async function history(s, card) {
    if (card.historyVersion === s.version) return;
    const h = await api.get(api.path("v1", "services", s.name, "history"));
    card.history = h.events;
    card.historyVersion = s.version;
  }

  async function cluster() {
    if (!clusterSeen) return;
    try {
      const c = await api.get("/v1/cluster");
      const box = $("cluster");
      box.hidden = c.store === "none";
      if (box.hidden) {
        clusterSeen = false; // a single proxy stays one until it restarts
        return;
      }
      const head = el("tr", {}, ["replica", "admin", "generation", "applied", "rejected"].map((h) => el("th", { scope: "col", text: h })));
      const rows = (c.replicas || []).map((r) => el("tr", {},
        el("td", { text: r.name }), el("td", { text: r.admin }), el("td", { class: "num", text: String(r.generation) }),
        el("td", { text: Object.entries(r.applied || {}).map(([k, v]) => k + " v" + v).join(", ") }),
        el("td", { class: "bad", text: Object.entries(r.rejected || {}).map(([k, v]) => k + " v" + v.version + ": " + v.error).join("; ") })));
      box.replaceChildren(el("h2", { text: "cluster (" + c.store + (c.connected ? ", connected" : ", store unreachable" + (c.unreachable_since ? " since " + c.unreachable_since : "")) + ")" }),
        el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
    } catch (e) {
      if (e.status === 404) clusterSeen = false; // an older proxy without the endpoint
      else throw e;
    }
  }

  function reloadBanner(last) {
    const box = $("reload");
    box.hidden = !last || last.ok;
    if (box.hidden) return;
    box.replaceChildren(
      el("strong", { text: "Last reload (" + last.source + ", " + fmt.time(last.at) + ") failed; the previous config is still in force." }),
      el("ul", {}, last.problems.map((p) => el("li", { text: p }))));
  }

  // One poll at a time: a refresh asked for during a poll runs right after it.
  let polling = false;
  let again = false;
  async function poll() {
    if (polling) {
      again = true;
      return;
    }
    polling = true;
    clearTimeout(timer);
    const mine = session;
    await pollOnce(mine);
    polling = false;
    if (again) {
      again = false;
      poll();
    } else if (mine === session) {
      timer = setTimeout(poll, POLL_MS); // not after a sign-out meanwhile
    }
  }

  // Puts every service of `all` on the page with the figures fetched so far.
  function show(all) {
    const now = Date.now();
    const list = all.services.map((s) => render(s, now));
    const box = $("services");
    if (list.length !== box.children.length || list.some((c, i) => box.children[i] !== c)) box.replaceChildren(...list);
    const names = new Set(all.services.map((s) => s.name));
    for (const name of cards.keys()) if (!names.has(name)) cards.delete(name);
    $("empty").hidden = list.length > 0;
    $("generation").textContent = "config generation " + all.generation;
    reloadBanner(all.last_reload);
  }

  // One round of reads; `mine` is the session it belongs to.
  async function pollOnce(mine) {
    try {
      const all = await api.get("/v1/services");
      if (mine !== session) return;
      // Traffic and health first; figures and history follow in the same poll.
      show(all);
      if (firstRender) performance.mark("switchyard-first-paint");
      await Promise.all(all.services.map(async (s) => {
        const card = cardOf(s.name);
        const [st] = await Promise.all([
          api.get(api.path("v1", "services", s.name, "stats") + FIGURES).catch(() => null),
          series(s, card).catch(() => null),
          history(s, card).catch(() => null),
        ]);
        card.stats = st;
      }));
      await cluster();
      if (mine !== session) return;
      show(all);
      setConn("live · updated " + new Date().toLocaleTimeString([], { hour12: false }), "ok");
      if (firstRender) {
        firstRender = false;
        performance.mark("switchyard-rendered");
        document.body.dataset.rendered = "1";
      }
    } catch (e) {
      if (mine !== session) return;
      if (e.status === 401) {
        api.setToken("");
        showLogin("The token is no longer accepted: " + e.message + ". Type it again.");
        return;
      }
      setConn("not updating: " + e.message, "bad");
    }
  }

  function init() {
    SY.actions.init();
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      // A header value must be visible ASCII; anything else would make fetch throw.
      if (!/^[\x21-\x7e]+$/.test(t)) {
        $("login-message").textContent = "A token is visible ASCII without spaces; that one cannot be sent. Type it again.";
        return;
      }
      clearTimeout(timer);
      api.setToken(t);
      signIn();
    });
    $("forget").addEventListener("click", () => {
      api.setToken("");
      $("forget").hidden = true;
      $("whoami").textContent = "";
      showLogin("Token forgotten. Type one to go on.");
    });
    signIn();
  }

  return { init, refresh: poll, toast };
})();

SY.app.init();
