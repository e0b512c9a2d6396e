// switchyard dashboard: the operator's buttons. Each one opens the dialog,
// which asks for a reason, shows from → to, and sends If-Match with the
// version the operator was looking at; a refusal shows the server's words.
"use strict";

SY.actions = (() => {
  const { el, fmt, api } = SY;
  const $ = (id) => document.getElementById(id);
  const ROLLOUT_KINDS = new Set(["rollout_step", "auto_rollback", "rollout_abort"]);
  let pending = null;

  // The traffic a rollback should return to, read from history (newest first):
  // rollbacks cancel the changes before them, a rollout counts as one change.
  function rollbackTarget(events) {
    let skip = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.kind === "rollback") {
        skip++;
        continue;
      }
      let from = e.from;
      if (ROLLOUT_KINDS.has(e.kind)) {
        while (i + 1 < events.length && ROLLOUT_KINDS.has(events[i + 1].kind)) from = events[++i].from;
      }
      if (skip > 0) skip--;
      else return from;
    }
    return null;
  }

  function only(traffic, pool) {
    return Object.fromEntries(Object.keys(traffic).map((p) => [p, p === pool ? 100 : 0]));
  }

  function open(spec) {
    pending = spec;
    $("dialog-title").textContent = spec.title;
    $("dialog-fields").replaceChildren(...(spec.fields || []));
    $("dialog-from").textContent = fmt.weights(spec.from);
    setTo(spec.to);
    $("dialog-reason").value = "";
    $("dialog-force").checked = false;
    $("dialog-force-row").hidden = !spec.force;
    $("dialog-error").hidden = true;
    $("dialog-ok").textContent = spec.confirm;
    $("dialog-ok").disabled = false;
    $("dialog").showModal();
    const first = spec.fields && spec.fields.length ? spec.fields[0].querySelector("input, select") : null;
    (first || $("dialog-reason")).focus();
  }

  function setTo(to) {
    $("dialog-to").textContent = typeof to === "string" ? to : fmt.weights(to);
  }

  async function submit(ev) {
    ev.preventDefault();
    if (!pending) return;
    const spec = pending;
    const ok = $("dialog-ok");
    ok.disabled = true;
    $("dialog-error").hidden = true;
    try {
      const result = await spec.submit($("dialog-reason").value, $("dialog-force").checked);
      pending = null;
      $("dialog").close();
      SY.app.toast(spec.done(result));
      SY.app.refresh();
    } catch (e) {
      const hint = e.status === 412 ? " — the service changed since you opened this; close, check the new state, and try again"
        : e.status === 409 ? " — refused by a gate; fix the cause or tick force" : "";
      $("dialog-error").textContent = (e.status ? e.status + ": " : "") + e.message + hint;
      $("dialog-error").hidden = false;
      ok.disabled = false;
    }
  }

  function field(label, input) {
    const id = "f-" + Math.random().toString(36).slice(2);
    input.id = id;
    return el("div", { class: "field" }, el("label", { for: id, text: label }), input);
  }

  function weightsDialog(s) {
    const inputs = Object.keys(s.traffic).map((p) => [p, el("input", { type: "number", min: "0", max: "100", step: "any", value: String(s.traffic[p]) })]);
    const read = () => Object.fromEntries(inputs.map(([p, i]) => [p, Number(i.value)]));
    const fields = inputs.map(([p, i]) => field(p + " weight (%)", i));
    inputs.forEach(([, i]) => i.addEventListener("input", () => setTo(read())));
    open({
      title: "Weights of " + s.name, from: s.traffic, to: s.traffic, fields, force: true, confirm: "Set weights",
      submit: (reason, force) => api.post(api.path("v1", "services", s.name, "weights"), { weights: read(), reason, force }, s.version),
      done: (v) => s.name + ": " + fmt.weights(v.traffic) + " (v" + v.version + ")",
    });
  }

  function rolloutDialog(s) {
    const candidates = Object.keys(s.traffic).filter((p) => s.traffic[p] < 100);
    const pool = el("select", {}, candidates.map((p) => el("option", { value: p, text: p })));
    const steps = el("input", { type: "text", placeholder: "as configured, e.g. 10,50,100", inputmode: "decimal" });
    const interval = el("input", { type: "text", placeholder: "as configured, e.g. 1m" });
    const preview = () => {
      const first = steps.value.trim() ? steps.value.split(",")[0].trim() + "%" : "its first step";
      setTo(pool.value + " at " + first + ", then step by step as the analysis passes");
    };
    [pool, steps].forEach((i) => i.addEventListener("input", preview));
    open({
      title: "Start a rollout on " + s.name, from: s.traffic, to: "", confirm: "Start rollout",
      fields: [field("canary pool", pool), field("steps (%)", steps), field("step interval", interval)],
      submit: (reason) => {
        const body = { pool: pool.value, reason };
        if (steps.value.trim()) {
          body.steps = steps.value.split(",").map((x) => Number(x.trim()));
          if (body.steps.some((x) => !Number.isFinite(x))) return Promise.reject(new api.ApiError(0, "steps must be numbers separated by commas"));
        }
        if (interval.value.trim()) body.step_interval = interval.value.trim();
        return api.post(api.path("v1", "services", s.name, "rollout"), body, s.version);
      },
      done: (v) => s.name + ": rollout of " + pool.value + " started, " + fmt.weights(v.traffic),
    });
    preview();
  }

  function rolloutControl(s, action) {
    const r = s.rollout;
    const to = action === "abort" ? r.from : action === "promote" ? only(s.traffic, r.pool) : "unchanged (" + fmt.weights(s.traffic) + ")";
    open({
      title: action[0].toUpperCase() + action.slice(1) + " rollout " + r.id, from: s.traffic, to, confirm: action[0].toUpperCase() + action.slice(1),
      submit: (reason) => api.post(api.path("v1", "services", s.name, "rollout", action), { reason }, s.version),
      done: (v) => s.name + ": rollout " + action + " done, " + fmt.weights(v.traffic),
    });
  }

  // The buttons of service `s`; `events` is its history (for the rollback preview).
  function bar(s, events, readOnly) {
    const btn = (label, action, onclick, cls) => el("button", {
      type: "button", class: cls, "data-action": action, disabled: readOnly,
      title: readOnly ? "read-only token: changes need an operator token" : null, on: { click: onclick }, text: label,
    });
    const r = s.rollout;
    const out = [];
    for (const p of Object.keys(s.traffic)) {
      if (s.traffic[p] === 100) continue;
      out.push(btn("Switch to " + p, "switch:" + p, () => open({
        title: "Switch " + s.name + " to " + p, from: s.traffic, to: only(s.traffic, p), force: true, confirm: "Switch",
        submit: (reason, force) => api.post(api.path("v1", "services", s.name, "switch"), { pool: p, reason, force }, s.version),
        done: (v) => s.name + " switched to " + p + " (v" + v.version + ")",
      })));
    }
    out.push(btn("Weights…", "weights", () => weightsDialog(s)));
    out.push(btn("Roll back", "rollback", () => {
      const target = events ? rollbackTarget(events) : null;
      open({
        title: "Roll back " + s.name, from: s.traffic, force: true, confirm: "Roll back",
        to: target ? target : "the traffic before the latest change",
        submit: (reason, force) => api.post(api.path("v1", "services", s.name, "rollback"), { reason, force }, s.version),
        done: (v) => s.name + " rolled back: " + fmt.weights(v.traffic) + " (v" + v.version + ")",
      });
    }, "danger"));
    if (r) {
      if (r.phase === "progressing") out.push(btn("Pause", "rollout-pause", () => rolloutControl(s, "pause")));
      if (r.phase === "paused") out.push(btn("Resume", "rollout-resume", () => rolloutControl(s, "resume")));
      out.push(btn("Promote", "rollout-promote", () => rolloutControl(s, "promote")));
      out.push(btn("Abort", "rollout-abort", () => rolloutControl(s, "abort"), "danger"));
    } else {
      out.push(btn("Start rollout…", "rollout-start", () => rolloutDialog(s)));
    }
    return el("div", { class: "actions" }, out);
  }

  function init() {
    $("dialog-form").addEventListener("submit", submit);
    $("dialog-cancel").addEventListener("click", () => {
      pending = null;
      $("dialog").close();
    });
    $("dialog").addEventListener("close", () => {
      pending = null;
    });
  }

  return { bar, init, rollbackTarget };
})();
