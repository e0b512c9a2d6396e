// switchyard dashboard: the operator's buttons. Each one opens the dialog,
// which asks for a reason, shows from → to, and sends If-Match with the
// version the operator is looking at; a refusal shows the server's words.
"use strict";

SY.actions = (() => {
  const { el, fmt, api } = SY;
  const $ = (id) => document.getElementById(id);
  let pending = null; // the open dialog's spec
  let inFlight = false;

  function only(traffic, pool) {
    return Object.fromEntries(Object.keys(traffic).map((p) => [p, p === pool ? 100 : 0]));
  }

  // spec: {service, version, title, from, to, toOf(service)?, fields?, force, confirm,
  //        submit(reason, force, version) → Promise, done(result) → text}
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
    $("dialog-cancel").disabled = false;
    $("dialog").showModal();
    const first = spec.fields && spec.fields.length ? spec.fields[0].querySelector("input, select") : null;
    (first || $("dialog-reason")).focus();
  }

  function setTo(to) {
    $("dialog-to").textContent = typeof to === "string" ? to : fmt.weights(to);
  }

  function showError(text) {
    $("dialog-error").textContent = text;
    $("dialog-error").hidden = false;
  }

  // A 412: show what the service is now, and let the next Apply send its version.
  async function restale(spec, e) {
    let fresh;
    try {
      fresh = await api.get(api.path("v1", "services", spec.service));
    } catch (_) {
      showError("412: " + e.message + " — close this and look again");
      return;
    }
    spec.version = fresh.version;
    spec.from = fresh.traffic;
    $("dialog-from").textContent = fmt.weights(fresh.traffic);
    if (spec.toOf) setTo(spec.toOf(fresh));
    showError("412: " + e.message + " — " + spec.service + " changed meanwhile (now v" + fresh.version +
      "); check from → to and apply again");
  }

  async function submit(ev) {
    ev.preventDefault();
    if (!pending || inFlight) return;
    const spec = pending;
    inFlight = true;
    $("dialog-ok").disabled = true;
    $("dialog-cancel").disabled = true;
    $("dialog-error").hidden = true;
    try {
      const result = await spec.submit($("dialog-reason").value, $("dialog-force").checked, spec.version);
      pending = null;
      $("dialog").close();
      SY.app.toast(spec.done(result));
      SY.app.refresh();
    } catch (e) {
      if (e.status === 412) await restale(spec, e);
      else showError((e.status ? e.status + ": " : "") + e.message + (e.status === 409 && spec.force ? " (tick force to override the health gate)" : ""));
    } finally {
      inFlight = false;
      $("dialog-ok").disabled = false;
      $("dialog-cancel").disabled = false;
    }
  }

  function field(label, input) {
    const id = "f-" + Math.random().toString(36).slice(2);
    input.id = id;
    return el("div", { class: "field" }, el("label", { for: id, text: label }), input);
  }

  const post = (s, tail, body) => (reason, force, version) =>
    api.post(api.path("v1", "services", s.name, ...tail), body(reason, force), version);

  function weightsDialog(s) {
    const inputs = Object.keys(s.traffic).map((p) => [p, el("input", { type: "number", min: "0", max: "100", step: "any", value: String(s.traffic[p]) })]);
    const read = () => Object.fromEntries(inputs.map(([p, i]) => [p, Number(i.value)]));
    inputs.forEach(([, i]) => i.addEventListener("input", () => setTo(read())));
    open({
      service: s.name, version: s.version, title: "Weights of " + s.name, from: s.traffic, to: s.traffic, toOf: read,
      fields: inputs.map(([p, i]) => field(p + " weight (%)", i)), force: true, confirm: "Set weights",
      submit: post(s, ["weights"], (reason, force) => ({ weights: read(), reason, force })),
      done: (v) => s.name + ": " + fmt.weights(v.traffic) + " (v" + v.version + ")",
    });
  }

  function rolloutDialog(s) {
    const candidates = Object.keys(s.traffic).filter((p) => s.traffic[p] < 100);
    const pool = el("select", {}, candidates.map((p) => el("option", { value: p, text: p })));
    const steps = el("input", { type: "text", placeholder: "as configured, e.g. 10,50,100", inputmode: "decimal" });
    const interval = el("input", { type: "text", placeholder: "as configured, e.g. 1m" });
    const describe = () => pool.value + " at " + (steps.value.trim() ? steps.value.split(",")[0].trim() + "%" : "its first step") +
      ", then step by step as the analysis passes";
    [pool, steps].forEach((i) => i.addEventListener("input", () => setTo(describe())));
    open({
      service: s.name, version: s.version, title: "Start a rollout on " + s.name, from: s.traffic, to: describe(), toOf: describe,
      fields: [field("canary pool", pool), field("steps (%)", steps), field("step interval", interval)], confirm: "Start rollout",
      submit: (reason, _force, version) => {
        const body = { pool: pool.value, reason };
        if (steps.value.trim()) {
          body.steps = steps.value.split(",").map((x) => Number(x.trim()));
          if (body.steps.some((x) => !Number.isFinite(x))) return Promise.reject(new api.ApiError(0, "steps must be numbers separated by commas"));
        }
        if (interval.value.trim()) body.step_interval = interval.value.trim();
        return api.post(api.path("v1", "services", s.name, "rollout"), body, version);
      },
      done: (v) => s.name + ": rollout of " + pool.value + " started, " + fmt.weights(v.traffic),
    });
  }

  function rolloutControl(s, action) {
    const r = s.rollout;
    const title = action[0].toUpperCase() + action.slice(1);
    const toOf = (fresh) => action === "abort" ? (fresh.rollout || r).from : action === "promote" ? only(fresh.traffic, r.pool)
      : "unchanged (" + fmt.weights(fresh.traffic) + ")";
    open({
      service: s.name, version: s.version, title: title + " rollout " + r.id, from: s.traffic, to: toOf(s), toOf, confirm: title,
      submit: post(s, ["rollout", action], (reason) => ({ reason })),
      done: (v) => s.name + ": rollout " + action + " done, " + fmt.weights(v.traffic),
    });
  }

  // The buttons of service `s`.
  function bar(s, readOnly) {
    const btn = (label, action, onclick, cls) => el("button", {
      type: "button", class: cls, "data-action": action, disabled: readOnly,
      title: readOnly ? "read-only token: changes need an operator token" : null, on: { click: onclick }, text: label,
    });
    const r = s.rollout;
    const out = [];
    for (const p of Object.keys(s.traffic)) {
      if (s.traffic[p] === 100) continue;
      out.push(btn("Switch to " + p, "switch:" + p, () => open({
        service: s.name, version: s.version, title: "Switch " + s.name + " to " + p, from: s.traffic, to: only(s.traffic, p),
        toOf: (fresh) => only(fresh.traffic, p), force: true, confirm: "Switch",
        submit: post(s, ["switch"], (reason, force) => ({ pool: p, reason, force })),
        done: (v) => s.name + " switched to " + p + " (v" + v.version + ")",
      })));
    }
    out.push(btn("Weights…", "weights", () => weightsDialog(s)));
    const back = (v) => v.rollback_to || "nothing left to roll back";
    out.push(btn("Roll back", "rollback", () => open({
      service: s.name, version: s.version, title: "Roll back " + s.name, from: s.traffic, to: back(s), toOf: back,
      force: true, confirm: "Roll back",
      submit: post(s, ["rollback"], (reason, force) => ({ reason, force })),
      done: (v) => s.name + " rolled back: " + fmt.weights(v.traffic) + " (v" + v.version + ")",
    }), "danger"));
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

  // Closes the dialog unless a request is on its way (its answer must be seen).
  function close() {
    if (inFlight) return;
    pending = null;
    if ($("dialog").open) $("dialog").close();
  }

  function init() {
    $("dialog-form").addEventListener("submit", submit);
    $("dialog-cancel").addEventListener("click", close);
    $("dialog").addEventListener("cancel", (ev) => {
      if (inFlight) ev.preventDefault();
    });
    $("dialog").addEventListener("close", () => {
      // Chromium lets a second Escape close it even when cancel is prevented:
      // while a request is on its way, open it again so its answer is seen.
      if (inFlight) $("dialog").showModal();
      else pending = null;
    });
  }

  return { bar, init, close };
})();
