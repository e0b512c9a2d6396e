// switchyard dashboard: talking to the admin API. Same origin only; the token
// the user typed is kept in this tab's sessionStorage and sent as a bearer.
"use strict";

const SY = {};

SY.api = (() => {
  const KEY = "switchyard.token";
  const TIMEOUT_MS = 10000;
  let token = sessionStorage.getItem(KEY) || "";

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function call(method, path, body, version) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (version !== undefined && version !== null) headers["If-Match"] = '"' + version + '"';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        redirect: "error",
        signal: AbortSignal.timeout(TIMEOUT_MS), // a hung request must not stall the poll or a dialog
      });
    } catch (e) {
      throw new ApiError(0, "cannot reach the admin API (" + e.message + ")");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const text = data && typeof data.error === "string" ? data.error : "HTTP " + res.status;
      throw new ApiError(res.status, text);
    }
    return data;
  }

  return {
    ApiError,
    get: (path) => call("GET", path),
    post: (path, body, version) => call("POST", path, body, version),
    hasToken: () => token !== "",
    setToken(t) {
      token = t;
      if (t) sessionStorage.setItem(KEY, t);
      else sessionStorage.removeItem(KEY);
    },
    path: (...parts) => "/" + parts.map(encodeURIComponent).join("/"),
  };
})();
