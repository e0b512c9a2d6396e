// switchyard dashboard: sign-in, the polling loop, and keeping the page in
// step with the API without rebuilding what did not change (so focus and
// open details survive a poll).
"use strict";

SY.app = (() => {
  const { el, api, view, fmt } = SY;
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1500;
  const STATS = "?window=5m&step=10s";
  const cards = new Map(); // service name → {root, parts: {name: key}, history, historyVersion}
  let role = null;
  let timer = null;
  let clusterSeen = true;
  let firstRender = true;

  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.hidden = true), 5000);
  }

  function showLogin(message) {
    clearTimeout(timer);
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
      card = { root: el("section", { class: "card svc", "data-service": name }), parts: {}, stats: null, history: null, historyVersion: -1 };
      cards.set(name, card);
    }
    return card;
  }

  function render(s, stats, now) {
    const card = cardOf(s.name);
    const readOnly = role !== "operator";
    patch(card, "head", JSON.stringify([s.name, s.version, s.active, s.sticky]), () => view.header(s));
    patch(card, "weights", JSON.stringify(s.traffic), () => view.weights(s));
    patch(card, "actions", JSON.stringify([s.version, s.traffic, s.rollout && s.rollout.phase, readOnly, card.historyVersion]),
      () => SY.actions.bar(s, card.history, readOnly));
    patch(card, "pools", JSON.stringify([s.pools, stats]), () => view.pools(s, stats));
    const r = s.rollout;
    patch(card, "rollout", JSON.stringify([r, r ? Math.round(now / 1000) : 0]), () => (r ? SY.rollout.panel(r, now) : el("div", { hidden: true })));
    patch(card, "history", JSON.stringify([card.historyVersion, card.history && card.history.length]), () => view.history(card.history));
    return card.root;
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
      box.replaceChildren(el("h2", { text: "cluster (" + c.store + (c.connected ? ", connected" : ", store unreachable") + ")" }),
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
    const signedOut = await pollOnce();
    polling = false;
    if (signedOut) return;
    if (again) {
      again = false;
      poll();
    } else {
      timer = setTimeout(poll, POLL_MS);
    }
  }

  // Puts every service of `all` on the page with the figures fetched so far.
  function show(all) {
    const now = Date.now();
    const list = all.services.map((s) => render(s, cardOf(s.name).stats, now));
    const box = $("services");
    if (list.length !== box.children.length || list.some((c, i) => box.children[i] !== c)) box.replaceChildren(...list);
    const names = new Set(all.services.map((s) => s.name));
    for (const name of cards.keys()) if (!names.has(name)) cards.delete(name);
    $("empty").hidden = list.length > 0;
    $("generation").textContent = "config generation " + all.generation;
    reloadBanner(all.last_reload);
  }

  // Returns true when the token stopped working (the sign-in form is shown).
  async function pollOnce() {
    try {
      const all = await api.get("/v1/services");
      // Traffic and health first; figures and history follow in the same poll.
      show(all);
      if (firstRender) performance.mark("switchyard-first-paint");
      await Promise.all(all.services.map(async (s) => {
        const card = cardOf(s.name);
        const [st] = await Promise.all([
          api.get(api.path("v1", "services", s.name, "stats") + STATS).catch(() => null),
          history(s, card).catch(() => null),
        ]);
        card.stats = st;
      }));
      await cluster();
      show(all);
      setConn("live · updated " + new Date().toLocaleTimeString([], { hour12: false }), "ok");
      if (firstRender) {
        firstRender = false;
        performance.mark("switchyard-rendered");
        document.body.dataset.rendered = "1";
      }
    } catch (e) {
      if (e.status === 401) {
        api.setToken("");
        showLogin("The token is no longer accepted: " + e.message + ". Type it again.");
        return true;
      }
      setConn("not updating: " + e.message, "bad");
    }
    return false;
  }

  function init() {
    SY.actions.init();
    $("login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      api.setToken($("token").value.trim());
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
