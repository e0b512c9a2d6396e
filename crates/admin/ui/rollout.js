// switchyard dashboard: a running rollout (SPEC §9) — its step ladder, the
// countdown to the next step, canary against baseline and every check.
"use strict";

SY.rollout = (() => {
  const { el, fmt } = SY;

  function countdown(r, now) {
    if (r.phase === "paused") return "paused";
    if (!r.next_step_at) return r.step + 1 >= r.steps.length ? "last step" : "";
    const s = Math.round((Date.parse(r.next_step_at) - now) / 1000);
    return s > 0 ? "next step in " + s + " s" : "next step when the analysis passes";
  }

  function ladder(r) {
    return el("ol", { class: "ladder", "aria-label": "steps" },
      r.steps.map((w, i) => {
        const state = i < r.step ? "done" : i === r.step ? "current" : "todo";
        return el("li", { class: "step " + state, "aria-current": i === r.step ? "step" : null, text: fmt.num(w) + "%" });
      }));
  }

  function figures(a) {
    const row = (name, f) => el("tr", {},
      el("th", { scope: "row", text: name }),
      el("td", { class: "num", text: f ? String(f.requests) : "–" }),
      el("td", { class: "num", text: f ? fmt.pct(f.error_rate) : "–" }),
      el("td", { class: "num", text: f ? fmt.ms(f.p50_ms) : "–" }),
      el("td", { class: "num", text: f ? fmt.ms(f.p99_ms) : "–" }));
    const head = el("tr", {}, ["", "requests", "errors", "p50", "p99"].map((h) => el("th", { scope: "col", text: h })));
    return el("table", { class: "figures" }, el("thead", {}, head), el("tbody", {}, row("canary", a.canary), row("baseline", a.baseline)));
  }

  function checks(a) {
    if (!a.checks || a.checks.length === 0) return el("p", { class: "muted", text: "no checks yet (" + a.verdict + ")" });
    const head = el("tr", {}, ["check", "value", "limit", "p", "result"].map((h) => el("th", { scope: "col", text: h })));
    const rows = a.checks.map((c) => el("tr", { class: "check " + c.result },
      el("td", { text: c.name }),
      el("td", { class: "num", text: fmt.num(c.value) }),
      el("td", { class: "num", text: fmt.num(c.limit) }),
      el("td", { class: "num", text: c.p === null || c.p === undefined ? "–" : fmt.num(c.p) }),
      el("td", { class: "result", text: c.result })));
    return el("table", { class: "checks" }, el("thead", {}, head), el("tbody", {}, rows));
  }

  // The panel for `r`, the service's running rollout.
  function panel(r, now) {
    const a = r.analysis || null;
    return el("div", { class: "rollout-panel phase-" + r.phase },
      el("h3", {}, "rollout " + r.id + ": " + r.pool + " against " + r.baseline + " ",
        el("span", { class: "badge phase", text: r.phase })),
      el("p", { class: "message", text: r.message }),
      el("div", { class: "row" }, ladder(r), el("span", { class: "countdown", text: countdown(r, now) })),
      a ? el("div", { class: "row wrap" },
        el("div", { class: "scroll" }, figures(a)),
        el("div", { class: "scroll" }, checks(a)),
        el("p", { class: "muted", text: "verdict " + a.verdict + " over " + a.window_s + " s, " + a.consecutive_failures + " consecutive failure(s)" }))
        : null,
      el("p", { class: "muted", text: "started " + fmt.time(r.started_at) + " by " + r.actor + (r.reason ? ": " + r.reason : "") }));
  }

  return { panel };
})();
