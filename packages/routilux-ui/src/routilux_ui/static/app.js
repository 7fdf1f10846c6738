// routilux ui: live updates (server-sent events), actions through the JSON API, the flow
// picture (Graphviz in WebAssembly) and the keyboard. Every value is set as text, never as HTML.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const page = document.body.dataset.page;
  const live = document.getElementById("live");

  function toast(text, isError) {
    const box = document.getElementById("toast");
    const p = document.createElement("p");
    p.textContent = text;
    if (isError) p.className = "err";
    box.appendChild(p);
    setTimeout(function () { p.remove(); }, isError ? 8000 : 4000);
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
        credentials: "same-origin",
      });
    } catch (err) {
      toast("The page cannot reach the server: " + err, true);
      return null;
    }
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      toast(data.error || response.status + " " + response.statusText, true);
      return null;
    }
    return data;
  }

  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf;
  });

  function setStatus(el, status) {
    el.className = "status s-" + status;
    el.textContent = status;
  }

  function updateBadges(changed) {
    changed.forEach(function (row) {
      document.querySelectorAll("[data-live-job]").forEach(function (el) {
        if (el.dataset.liveJob === row.job_id) setStatus(el, row.status);
      });
    });
  }

  // Fetch the page again and swap one region (selected from the answer): at most one fetch
  // at a time, 300 ms apart, and one more after it when a change came in meanwhile.
  let refreshTimer = null;
  let refreshAgain = false;
  function refresh(selector, guard) {
    if (refreshTimer) { refreshAgain = true; return; }
    refreshTimer = setTimeout(function () {
      const done = function () {
        refreshTimer = null;
        if (refreshAgain) { refreshAgain = false; refresh(selector, guard); }
      };
      if (guard && !guard()) { done(); return; }
      htmx.ajax("GET", location.pathname + location.search,
        { target: selector, select: selector, swap: "outerHTML" }).then(done, done);
    }, 300);
  }

  async function refreshInboxCount() {
    const response = await fetch("/api/inbox", { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const count = document.getElementById("inbox-count");
    count.textContent = data.items.length;
    count.classList.toggle("zero", data.items.length === 0);
  }

  function listen(url, handlers) {
    const source = new EventSource(url);
    source.onopen = function () { live.classList.add("on"); };
    source.onerror = function () { live.classList.remove("on"); };
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (e) { handlers[name](JSON.parse(e.data)); });
    });
    return source;
  }

  // -- an answer form: a choice button, or the typed answer ----------------------------------
  function typing() {
    const el = document.activeElement;
    return el && el.tagName === "INPUT" && el.value !== "";
  }

  document.addEventListener("submit", async function (e) {
    const form = e.target.closest("form.answer");
    if (!form) return;
    e.preventDefault();
    const values = {};
    const chosen = e.submitter && e.submitter.name === "choice" ? e.submitter.value : null;
    form.querySelectorAll("input[type=text]").forEach(function (input) {
      if (input.value.trim() !== "") values[input.name] = input.value.trim();
    });
    if (chosen !== null) values.answer = chosen;
    if (Object.keys(values).length === 0) {
      toast("Type an answer or pick a choice", true);
      return;
    }
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    const result = await post(form.dataset.resumeUrl, { values: values, routine_id: form.dataset.routine });
    form.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
    if (!result) return;
    toast("Answered " + JSON.stringify(values.answer !== undefined ? values.answer : values) + ": job " + result.job_id + " runs on");
    const card = form.closest(".task");
    if (page === "inbox" && card) moveToAnswered(card, values, result);
  });

  function moveToAnswered(card, values, result) {
    const section = document.getElementById("answered");
    const item = document.createElement("li");
    const question = card.querySelector(".question").textContent;
    const link = document.createElement("a");
    link.href = card.dataset.href;
    link.textContent = question;
    const badge = document.createElement("span");
    badge.dataset.liveJob = result.job_id;
    setStatus(badge, result.status);
    item.append(badge, " ", link, " → " + JSON.stringify(values.answer !== undefined ? values.answer : values));
    section.querySelector("ul").prepend(item);
    section.hidden = false;
    const next = card.nextElementSibling;
    card.remove();
    if (next && next.classList.contains("task")) next.focus();
  }

  // -- the jobs list and the inbox: live through /api/events --------------------------------
  if (page === "jobs" || page === "inbox") {
    listen("/api/events", {
      jobs: function (data) {
        updateBadges(data.changed);
        refreshInboxCount();
        if (page === "jobs") refresh("#jobs");
        else refresh("#inbox-items", function () { return !typing(); });
      },
    });
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const inField = ["INPUT", "SELECT", "TEXTAREA"].indexOf(document.activeElement.tagName) >= 0;
    if (inField) {
      if (e.key === "Escape") document.activeElement.blur();
      return;
    }
    if (page === "jobs" && e.key === "/") {
      e.preventDefault();
      document.getElementById("q").focus();
    }
    if (page !== "inbox") return;
    const tasks = Array.from(document.querySelectorAll("#inbox-items .task"));
    if (tasks.length === 0) return;
    const current = document.activeElement.closest ? document.activeElement.closest(".task") : null;
    const at = tasks.indexOf(current);
    if (e.key === "j" || e.key === "k") {
      const next = e.key === "j" ? Math.min(at + 1, tasks.length - 1) : Math.max(at - 1, 0);
      tasks[next].focus();
      tasks[next].scrollIntoView({ block: "nearest" });
    } else if (current && /^[1-9]$/.test(e.key)) {
      const option = current.querySelector(".option.o-" + e.key);
      if (option) option.click();
    } else if (current && e.key === "a") {
      e.preventDefault();
      const input = current.querySelector("input[type=text]");
      if (input) input.focus();
    } else if (current && e.key === "o") {
      location.href = current.dataset.href;
    }
  });

  if (page === "inbox") {
    const first = document.querySelector("#inbox-items .task");
    if (first) first.focus();
  }

  // -- one job: the picture, the buttons, live through /api/jobs/ID/events ------------------
  if (page === "job") {
    const graph = document.getElementById("graph");
    let dot = graph.dataset.dot;
    let mark = null;
    let vizReady = Viz.instance();

    function draw(text) {
      vizReady.then(function (viz) {
        const svg = viz.renderSVGElement(text);
        graph.replaceChildren(svg);
        graph.dataset.drawn = "1";
      }).catch(function (err) { graph.textContent = "The flow cannot be drawn: " + err; });
    }
    draw(dot);

    document.addEventListener("click", async function (e) {
      const button = e.target.closest("button[data-action]");
      if (!button) return;
      const action = button.dataset.action;
      const job = document.getElementById("job").dataset.job;
      if (action === "cancel" && !confirm("Cancel job " + job + "? A cancelled job never runs again.")) return;
      const base = button.closest(".actions").dataset.base;
      const result = await post(base + action, {});
      if (result) toast(action + ": job " + result.job_id + " " + (result.requested ? result.requested + " requested" : result.status));
    });

    listen(document.getElementById("job").dataset.events, {
      job: function (data) {
        if (data.dot !== dot) { dot = data.dot; draw(dot); }
        document.querySelectorAll("[data-live-job]").forEach(function (el) { setStatus(el, data.status); });
        const now = [data.status, data.updated_at, data.requested, data.note].join("|");
        if (mark !== null && now !== mark) refresh("#job", function () { return !typing(); });
        mark = now;
      },
      gone: function (data) { toast(data.error, true); },
      problem: function (data) { toast(data.error, true); },
    });
  }
})();
