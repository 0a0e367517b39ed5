// The Gatehouse dashboard: a small single-page app over the daemon's JSON
// (/api/...) and its live audit feed (/events, server-sent events). Every
// text from the daemon goes into the DOM as text, never as HTML.
"use strict";
(function () {
  const view = document.getElementById("view");
  const state = { me: null, route: null, onEvent: null, timers: [] };
  // When each live event was applied to the page: {seq, at_ms, applied_ms}.
  window.gatehouseApplied = [];

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "onclick") e.addEventListener("click", v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  async function api(path, init) {
    const r = await fetch(path, Object.assign({ credentials: "same-origin" }, init || {}));
    if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }

  function notice(text, bad) {
    const n = document.getElementById("notice");
    n.textContent = text; n.className = "notice" + (bad ? " bad" : ""); n.hidden = false;
    clearTimeout(notice.t); notice.t = setTimeout(() => { n.hidden = true; }, 6000);
  }

  async function act(path, body, done) {
    try {
      await api(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Gatehouse-CSRF": state.me.csrf || "" },
        body: JSON.stringify(body || {}),
      });
      notice("Done.");
      if (done) done();
    } catch (e) { notice(e.message, true); }
  }

  // Replaces the view's content; absent parts (null, false) are left out.
  function show(...parts) {
    view.replaceChildren(...parts.flat().filter((p) => p !== null && p !== undefined && p !== false));
  }
  function clip(text, n) { return text && text.length > n ? text.slice(0, n - 1) + "…" : text; }

  function short(digest) { return digest ? digest.slice(0, 12) : "—"; }
  function age(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }
  function when(ms) { return ms ? new Date(ms).toLocaleString() : "—"; }
  function ago(ms) { return h("span", { class: "age", "data-at": ms, title: when(ms) }, age(ms)); }
  function phase(p) { return h("span", { class: "phase", "data-phase": p }, p); }
  function fmt(v) { return v === null || v === undefined ? "—" : window.Charts.fmt(v); }
  function applied(ev) { window.gatehouseApplied.push({ seq: ev.seq, kind: ev.kind, release: ev.release, at_ms: ev.at_ms, applied_ms: Date.now() }); }
  function later(fn, ms) { const t = setTimeout(fn, ms); state.timers.push(t); return t; }
  function debounce(fn, ms) { let t = null; return () => { if (t === null) t = later(() => { t = null; fn(); }, ms); }; }
  setInterval(() => document.querySelectorAll(".age").forEach((a) => { a.textContent = age(+a.dataset.at); }), 1000);

  // --- Releases ----------------------------------------------------------
  async function releases() {
    const data = await api("/api/releases?limit=100");
    const body = h("tbody", { id: "releases" });
    const row = (r) => h("tr", { "data-release": r.id },
      h("td", {}, h("a", { href: "#/releases/" + r.id }, "#" + r.id)),
      h("td", {}, r.pipeline),
      h("td", { class: "phase-cell" }, phase(r.phase)),
      h("td", { class: "env-cell" }, r.environment || "—"),
      h("td", {}, h("code", {}, short(r.candidate))),
      h("td", {}, r.submitted_by),
      h("td", {}, ago(r.submitted_at_ms)),
      h("td", { class: "reason-cell", title: r.reason || null }, clip(r.reason || "", 200)));
    data.releases.forEach((r) => body.appendChild(row(r)));
    show(h("h1", {}, "Releases"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Release", "Pipeline", "Phase", "Environment", "Candidate", "By", "Submitted", "Reason"].map((t) => h("th", {}, t)))), body),
      data.releases.length ? null : h("p", { class: "muted", id: "no-releases" }, "No release yet. Submit one with `gatehouse submit`."));
    const refresh = debounce(async () => {
      const fresh = await api("/api/releases?limit=100");
      const rows = fresh.releases.map(row);
      body.replaceChildren(...rows);
      const none = document.getElementById("no-releases"); if (none) none.remove();
    }, 250);
    state.onEvent = (ev) => {
      if (!ev.release) return;
      let tr = body.querySelector('tr[data-release="' + ev.release + '"]');
      if (!tr && ev.kind === "release.submitted") {
        tr = row({ id: ev.release, pipeline: "", phase: ev.phase || "Pending", environment: ev.environment, candidate: "", submitted_by: ev.actor, submitted_at_ms: ev.at_ms, reason: "" });
        body.insertBefore(tr, body.firstChild);
      }
      if (tr && ev.phase) {
        tr.querySelector(".phase-cell").replaceChildren(phase(ev.phase));
        if (ev.environment) tr.querySelector(".env-cell").textContent = ev.environment;
      }
      if (tr) applied(ev);
      refresh();
    };
  }

  // --- One release -------------------------------------------------------
  function gateRows(gates) {
    return gates.map((g) => h("tr", {},
      h("td", {}, g.gate, g.blocking ? null : h("span", { class: "muted" }, " (advisory)")),
      h("td", {}, g.plugin),
      h("td", {}, h("span", { class: "badge " + g.outcome }, g.outcome)),
      h("td", { class: "num" }, fmt(g.score)),
      h("td", {}, g.reason),
      h("td", {}, (g.measurements || []).map((m) => h("div", {}, m.name + " = " + fmt(m.value) + (m.unit ? " " + m.unit : ""))))));
  }

  async function release(id) {
    const r = await api("/api/releases/" + id);
    const may = state.me.may_operate && !r.terminal;
    const env = r.environment;
    const reload = () => route();
    const buttons = may ? h("div", { class: "actions" },
      (r.awaiting_approval || r.paused) ? h("button", { class: "primary", id: "approve", onclick: () => act("/api/releases/" + id + "/approve", { environment: env || "" }, reload) }, "Approve " + (env || "")) : null,
      h("button", { class: "danger", id: "abort", onclick: () => { const why = prompt("Why abort release " + id + "?"); if (why !== null) act("/api/releases/" + id + "/abort", { reason: why }, reload); } }, "Abort"),
      env ? h("button", { id: "rollback", onclick: () => { const why = prompt("Why roll back " + env + "?"); if (why !== null) act("/api/environments/" + encodeURIComponent(env) + "/rollback", { reason: why }, reload); } }, "Roll back " + env) : null) : null;
    const timeline = h("ol", { class: "timeline", id: "timeline" }, r.stages.map((s) => h("li", { "data-state": s.state, "data-environment": s.environment },
      h("b", {}, s.environment), h("div", { class: "muted" }, s.state + (s.canary ? " · canary" : "") + (s.approvals_required ? " · " + s.approved_by.length + "/" + s.approvals_required + " approvals" : "")))));
    const stages = r.stages.map((s) => h("section", { class: "card stage", "data-environment": s.environment },
      h("h3", {}, s.environment + " ", h("span", { class: "badge" }, s.state), s.canary ? h("a", { href: "#/releases/" + id + "/canary", class: "canary-link" }, "canary view") : null),
      s.gates.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Gate", "Plugin", "Verdict", "Score", "Reason", "Measurements"].map((t) => h("th", {}, t)))), h("tbody", {}, gateRows(s.gates))) : h("p", { class: "muted" }, "No gate verdict here (yet)."),
      s.approvals_required || s.approvals.length ? h("div", {}, h("h3", {}, "Approvals (" + s.approved_by.length + " of " + s.approvals_required + ")"),
        h("ul", {}, s.approvals.map((a) => h("li", { class: "approval" }, a.by + ", " + when(a.at_ms))))) : null));
    show(
      h("h1", {}, "Release #" + r.id + " ", phase(r.phase)),
      h("div", { class: "facts" },
        h("div", {}, h("b", {}, "Pipeline"), r.pipeline),
        h("div", {}, h("b", {}, "Candidate"), h("code", {}, r.candidate)),
        h("div", {}, h("b", {}, "Submitted"), r.submitted_by + ", ", ago(r.submitted_at_ms)),
        h("div", {}, h("b", {}, "Environment"), env || "—")),
      r.reason ? h("p", { class: "reason" }, r.reason) : null,
      buttons, timeline, stages,
      h("h2", {}, "Events"),
      h("table", { id: "events" }, h("tbody", {}, r.events.map((e) => h("tr", {}, h("td", { class: "num" }, e.seq), h("td", {}, when(e.at_ms)), h("td", {}, e.kind), h("td", {}, e.actor), h("td", {}, e.message))))));
    const refresh = debounce(reload, 100);
    state.onEvent = (ev) => { if (ev.release === +id) { if (ev.phase) document.querySelector("h1 .phase").replaceWith(phase(ev.phase)); applied(ev); refresh(); } };
  }

  // --- Canary ------------------------------------------------------------
  const UNITS = { error_rate: "share", latency_mean: "ms", latency_centre: "ms", latency_distribution: "ms", latency_p95: "ms", latency_p99: "ms", cost: "$/request", label_divergence: "share", prediction_divergence: "|Δ|" };

  async function canary(id) {
    const seen = new Map();
    let latest = null;
    const draw = () => {
      const history = [...seen.values()].sort((a, b) => a.at_ms - b.at_ms);
      if (!latest) {
        show(h("h1", {}, "Canary of release #" + id), h("p", { class: "muted", id: "no-judgement" }, "No judgement yet: it comes once services report observations for both arms."));
        return;
      }
      const j = latest;
      const charts = j.metrics.map((m) => {
        const arm = (name) => ({ name: name, points: history.flatMap((s) => s.metrics.filter((x) => x.metric === m.metric && x[name] !== null && x[name] !== undefined).map((x) => [s.at_ms, x[name]])) });
        return window.Charts.line({ title: m.metric, unit: UNITS[m.metric] || "", series: [arm("baseline"), arm("canary")], attr: "arm", data: { metric: m.metric }, empty: (m.note || "no value yet: judged at the step's final look").slice(0, 64) });
      });
      const table = h("table", { id: "judge" },
        h("thead", {}, h("tr", {}, ["Metric", "Baseline", "Canary", "n (b/c)", "Test", "Statistic", "p-value", "e-value", "Threshold", "Effect", "Outcome", "Note"].map((t) => h("th", {}, t)))),
        h("tbody", {}, j.metrics.map((m) => h("tr", { "data-metric": m.metric },
          h("td", {}, m.metric, m.critical ? h("span", { class: "muted" }, " (critical)") : null),
          h("td", { class: "num" }, fmt(m.baseline)), h("td", { class: "num" }, fmt(m.canary)),
          h("td", { class: "num" }, m.baseline_n + " / " + m.canary_n), h("td", {}, m.test),
          h("td", { class: "num" }, fmt(m.statistic)), h("td", { class: "num" }, fmt(m.p_value)), h("td", { class: "num" }, fmt(m.e_value)),
          h("td", { class: "num" }, fmt(m.threshold)), h("td", {}, m.effect_text || "—"),
          h("td", {}, h("span", { class: "badge " + m.outcome }, m.outcome)), h("td", {}, m.note)))));
      show(
        h("h1", {}, "Canary of ", h("a", { href: "#/releases/" + id }, "release #" + id), " in " + j.environment),
        h("div", { class: "facts", id: "canary-facts" },
          h("div", {}, h("b", {}, "Decision"), h("span", { class: "badge " + j.decision.kind, id: "decision" }, j.decision.kind.replace("_", " "))),
          h("div", {}, h("b", {}, "Step"), String(j.step)),
          h("div", {}, h("b", {}, "Weight"), j.weight_percent + "%"),
          h("div", {}, h("b", {}, "Samples"), "baseline " + j.baseline_n + " · canary " + j.canary_n),
          h("div", {}, h("b", {}, "Mirrored pairs"), String(j.mirrored_pairs)),
          h("div", {}, h("b", {}, "Look"), j.look + (j.last ? " (last)" : "")),
          h("div", {}, h("b", {}, "Score"), fmt(j.score)),
          h("div", {}, h("b", {}, "Judged"), ago(j.at_ms))),
        h("p", { class: "reason", id: "decision-reason" }, j.reason),
        h("div", { class: "grid", id: "charts" }, charts),
        h("h2", {}, "The judge's table"), table);
    };
    const load = async () => {
      const c = await api("/api/releases/" + id + "/canary");
      for (const s of c.history) seen.set(s.at_ms, s);
      if (c.latest) { seen.set(c.latest.at_ms, c.latest); latest = c.latest; }
      draw();
      return c;
    };
    const c = await load();
    const poll = async () => {
      if (state.route !== location.hash) return;
      try { const now = await load(); if (now.latest && now.latest.last) return; } catch (e) { notice(e.message, true); }
      later(poll, 1000);
    };
    if (!(c.latest && c.latest.last)) later(poll, 1000);
    state.onEvent = (ev) => { if (ev.release === +id) { applied(ev); load(); } };
  }

  // --- Environments, DORA, plugins --------------------------------------
  async function environments() {
    const [envs, dora, plugins] = await Promise.all([api("/api/environments"), api("/api/dora"), api("/api/plugins")]);
    const rows = envs.environments.map((e) => h("tr", { "data-environment": e.name },
      h("td", {}, h("b", {}, e.name)),
      h("td", {}, e.active ? [h("code", {}, short(e.active.digest)), " ", h("a", { href: "#/releases/" + e.active.release }, "#" + e.active.release), " ", ago(e.active.deployed_at_ms)] : h("span", { class: "muted" }, "nothing live")),
      h("td", {}, e.canary ? [h("code", {}, short(e.canary.digest)), " at " + e.canary_weight_percent + "% ", h("a", { href: "#/releases/" + e.canary.release + "/canary" }, "#" + e.canary.release)] : "—"),
      h("td", {}, e.adapter),
      h("td", {}, h("span", { class: "badge " + (e.drift === "drifted" ? "bad" : "ok") }, e.drift)),
      h("td", {}, state.me.may_operate && e.active ? h("button", { class: "rollback", onclick: () => { const why = prompt("Why roll back " + e.name + "?"); if (why !== null) act("/api/environments/" + encodeURIComponent(e.name) + "/rollback", { reason: why }, route); } }, "Roll back") : null)));
    const doraCards = dora.environments.map((f) => h("section", { class: "card", "data-environment": f.environment },
      h("h3", {}, f.environment),
      h("div", { class: "facts" },
        h("div", {}, h("b", {}, "Deployments"), f.deployments + " (" + fmt(f.deployments_per_day) + "/day)"),
        h("div", {}, h("b", {}, "Lead time p50 / p90"), (f.lead_time_median_ms === null ? "—" : fmt(f.lead_time_median_ms / 1000) + " s") + " / " + (f.lead_time_p90_ms === null ? "—" : fmt(f.lead_time_p90_ms / 1000) + " s")),
        h("div", {}, h("b", {}, "Change failure rate"), f.change_failure_rate === null ? "—" : fmt(f.change_failure_rate * 100) + "%"),
        h("div", {}, h("b", {}, "Recovery p50"), f.recovery_median_ms === null ? "—" : fmt(f.recovery_median_ms / 1000) + " s"),
        h("div", {}, h("b", {}, "Canaries rolled back"), String(f.canaries_rolled_back))),
      window.Charts.bars({ title: "Deployments and failures per day", unit: "", days: f.days, series: ["deployments", "failures"], data: { environment: f.environment } })));
    const pluginRows = plugins.plugins.map((p) => h("tr", { "data-plugin": p.name },
      h("td", {}, p.name), h("td", {}, p.version), h("td", {}, p.kind), h("td", {}, p.active ? h("span", { class: "badge ok" }, "active") : ""),
      h("td", {}, h("code", {}, short(p.digest))), h("td", {}, p.origin), h("td", {}, (p.granted || []).join(", ") || "—"), h("td", {}, p.pushed_by + ", ", ago(p.pushed_at_ms)), h("td", {}, p.summary)));
    show(
      h("h1", {}, "Environments"),
      h("table", { id: "environments" }, h("thead", {}, h("tr", {}, ["Environment", "Live", "Canary", "Adapter", "Drift", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
      h("h2", {}, "DORA, last " + dora.days + " days"), h("div", { class: "grid", id: "dora" }, doraCards),
      h("h2", {}, "Plugin registry"),
      h("table", { id: "plugins" }, h("thead", {}, h("tr", {}, ["Plugin", "Version", "Kind", "", "Digest", "Origin", "Granted", "Pushed", "Summary"].map((t) => h("th", {}, t)))), h("tbody", {}, pluginRows)));
    const refresh = debounce(route, 500);
    state.onEvent = (ev) => { if (ev.kind.startsWith("env.") || ev.kind.startsWith("plugin.") || ev.phase === "Succeeded" || ev.phase === "Canary") { applied(ev); refresh(); } };
  }

  // --- Audit -------------------------------------------------------------
  async function audit() {
    const a = await api("/api/audit");
    const v = a.verification;
    show(
      h("h1", {}, "Audit log"),
      h("p", { id: "chain" }, v.intact
        ? [h("span", { class: "badge ok" }, "chain intact"), " " + v.events + " events verified; head " + (v.head_hash || "").slice(0, 16)]
        : [h("span", { class: "badge bad" }, "chain broken"), " at event " + v.bad_seq + ": " + v.problem]),
      h("table", { id: "audit" }, h("thead", {}, h("tr", {}, ["#", "When", "Kind", "Actor", "Release", "Message"].map((t) => h("th", {}, t)))),
        h("tbody", {}, a.events.slice().reverse().map((e) => h("tr", {}, h("td", { class: "num" }, e.seq), h("td", {}, when(e.at_ms)), h("td", {}, e.kind), h("td", {}, e.actor), h("td", {}, e.release ? h("a", { href: "#/releases/" + e.release }, "#" + e.release) : ""), h("td", {}, e.message))))));
    const refresh = debounce(route, 1000);
    state.onEvent = (ev) => { applied(ev); refresh(); };
  }

  // --- Routing and the live feed ----------------------------------------
  async function route() {
    state.timers.forEach(clearTimeout); state.timers = [];
    state.onEvent = null;
    state.route = location.hash;
    const path = (location.hash || "#/").slice(1);
    let m, nav = "releases", render;
    if ((m = path.match(/^\/releases\/(\d+)\/canary$/))) render = () => canary(m[1]);
    else if ((m = path.match(/^\/releases\/(\d+)$/))) render = () => release(m[1]);
    else if (path === "/environments") { nav = "environments"; render = environments; }
    else if (path === "/audit") { nav = "audit"; render = audit; }
    else render = releases;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === nav));
    try { await render(); } catch (e) { show(h("p", { class: "error" }, e.message)); }
  }

  function live() {
    const badge = document.getElementById("live");
    const source = new EventSource("/events");
    source.onopen = () => { badge.textContent = "live"; badge.className = "live on"; };
    source.onerror = () => { badge.textContent = "reconnecting…"; badge.className = "live"; };
    source.addEventListener("audit", (m) => {
      let ev; try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (state.onEvent) state.onEvent(ev);
    });
  }

  async function start() {
    state.me = await api("/api/me");
    document.getElementById("who").textContent = state.me.name + " (" + state.me.role + ")";
    window.addEventListener("hashchange", route);
    live();
    await route();
  }
  start().catch((e) => show(h("p", { class: "error" }, e.message)));
})();
