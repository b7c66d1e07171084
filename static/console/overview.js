/* The overview, kept current without reloading: the console's WebSocket (/ws/console/)
   pushes the topics this viewer may see; charts with the vendored uPlot; every figure is
   also text. The socket reconnects with backoff; only when it keeps failing does the page
   poll the figures (and stops polling once the socket is back). */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("overview-live").textContent);
  var statusEl = document.getElementById("overview-connection");
  var announcer = document.getElementById("overview-figures-announce");
  var MISSING = "\u2013";
  var STREAM_KEPT = 20;
  var FIGURES_OF = {
    "system.metrics": "traffic",
    "costs.realtime": "costs",
    "providers.health": "providers",
    "system.alerts": "alerts"
  };

  function format(value, kind) {
    if (value === null || value === undefined || value === "") return MISSING;
    var n = Number(value);
    if (isNaN(n)) return String(value);
    var grouped = function (x, digits) {
      return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
    };
    if (kind === "ms") return grouped(n, 0) + " ms";
    if (kind === "pct") return (n * 100).toFixed(1) + "%";
    // Sub-cent amounts keep six places, as the server renders them (templatetags/live.py).
    if (kind === "usd") return "$" + grouped(n, n >= 100 ? 2 : (n === 0 || n >= 0.01 ? 4 : 6));
    if (kind === "int") return grouped(n, 0);
    if (kind === "rate") return grouped(n, 2);
    return String(value);
  }

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function setStatus(text, kind) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.className = "badge " + kind;
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function fillRows(tbody, rows, cells, emptyText, columns) {
    if (!tbody) return;
    tbody.textContent = "";
    if (!rows || !rows.length) {
      var tr = el("tr");
      var td = el("td", emptyText, "muted");
      td.colSpan = columns;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    rows.forEach(function (row) {
      var tr = el("tr");
      cells(row).forEach(function (cell) { tr.appendChild(cell); });
      tbody.appendChild(tr);
    });
  }

  function numCell(text) { return el("td", text, "num"); }

  // --- figures ---------------------------------------------------------------------------
  function updateFigures(key, data) {
    document.querySelectorAll('[data-figure^="' + key + '."]').forEach(function (node) {
      var field = node.getAttribute("data-figure").slice(key.length + 1);
      if (Object.prototype.hasOwnProperty.call(data, field)) {
        node.textContent = format(data[field], node.getAttribute("data-format"));
      }
    });
  }

  var lastAlerts = null;
  var handlers = {
    traffic: function (data) {
      updateFigures("traffic", data);
      var top = function (row) { return [el("td", row.name), numCell(format(row.requests, "int"))]; };
      fillRows(document.getElementById("overview-routes"), data.routes, top, "No routed requests yet.", 2);
      fillRows(document.getElementById("overview-models"), data.models, top, "No requests yet.", 2);
      drawCharts(data.series);
    },
    costs: function (data) {
      updateFigures("costs", data);
      fillRows(document.getElementById("overview-tenants"), data.tenants, function (row) {
        return [el("td", row.name), numCell(format(row.requests_hour, "int")),
                numCell(format(row.spend_hour_usd, "usd"))];
      }, "No requests in the last hour.", 3);
    },
    providers: function (rows) {
      fillRows(document.getElementById("overview-providers"), rows, function (p) {
        var name = el("td", p.name);
        if (!p.enabled) name.appendChild(el("span", " (disabled)", "muted"));
        var health = el("td");
        health.appendChild(el("span", p.health, "badge status-" + p.health));
        var circuits = el("td");
        if (!p.circuits.length) circuits.appendChild(el("span", "no models", "muted"));
        p.circuits.forEach(function (c) {
          circuits.appendChild(el("span", c.model + ": " + c.state, "badge status-" + c.badge));
          circuits.appendChild(document.createTextNode(" "));
        });
        return [name, health, numCell(format(p.latency_ms, "ms")), circuits];
      }, "No providers yet.", 4);
    },
    alerts: function (alerts) {
      var list = document.getElementById("overview-alerts");
      if (!list) return;
      list.textContent = "";
      if (!alerts.length) list.appendChild(el("li", "Nothing needs attention.", "muted"));
      alerts.forEach(function (a) {
        var li = el("li");
        li.appendChild(el("span", a.level, "badge " + a.level));
        li.appendChild(document.createTextNode(" " + a.text));
        list.appendChild(li);
      });
      var summary = alerts.map(function (a) { return a.text; }).join(" ");
      if (lastAlerts !== null && summary !== lastAlerts) {
        announce(alerts.length ? "Alerts: " + summary : "No more alerts.");
      }
      lastAlerts = summary;
    }
  };

  function describe(r) {
    var text = (r.model || "(no model)") + (r.route ? " via " + r.route : "") +
      (r.tenant ? " for " + r.tenant : "") + " \u00b7 " + r.http_status + " \u00b7 " +
      format(r.latency_ms, "ms");
    return text;
  }

  function streamRequests(rows) {
    var list = document.getElementById("overview-stream");
    var errors = document.getElementById("overview-errors");
    if (list && list.firstElementChild && list.firstElementChild.classList.contains("muted")) {
      list.textContent = "";
    }
    var newErrors = 0;
    rows.forEach(function (r) {
      if (list) {
        var li = el("li");
        li.appendChild(el("span", r.status, "badge status-" + r.status));
        li.appendChild(document.createTextNode(" " + describe(r)));
        list.insertBefore(li, list.firstChild);
      }
      if (errors && r.status === "error") {
        newErrors += 1;
        if (errors.firstElementChild && errors.firstElementChild.classList.contains("muted")) {
          errors.textContent = "";
        }
        var item = el("li");
        item.appendChild(el("span", String(r.http_status), "badge bad"));
        item.appendChild(document.createTextNode(" "));
        item.appendChild(el("span", r.error_type || "error", "mono"));
        item.appendChild(document.createTextNode(" " + describe(r)));
        errors.insertBefore(item, errors.firstChild);
        while (errors.children.length > 10) errors.removeChild(errors.lastChild);
      }
    });
    if (list) while (list.children.length > STREAM_KEPT) list.removeChild(list.lastChild);
    if (newErrors) announce(newErrors + (newErrors === 1 ? " request failed." : " requests failed."));
  }

  function apply(figures) {
    Object.keys(handlers).forEach(function (key) {
      if (figures[key] !== undefined) handlers[key](figures[key]);
    });
  }

  // --- charts (uPlot) ----------------------------------------------------------------------
  var charts = {};
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function chartOptions(node, series) {
    var axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--border") }, ticks: { stroke: cssVar("--border") } };
    return {
      width: Math.max(node.clientWidth, 200),
      height: 180,
      legend: { show: true },
      scales: { x: { time: true } },
      axes: [axis, Object.assign({}, axis, { size: 56 })],
      series: [{}].concat(series)
    };
  }

  function chartData(series, keys) {
    return [series.t].concat(keys.map(function (k) { return series[k]; }));
  }

  function drawCharts(series) {
    if (!series || !window.uPlot) return;
    var specs = {
      "overview-chart-rps": [["rps"], [{ label: "req/s", stroke: cssVar("--accent"), width: 2, fill: cssVar("--accent-soft") }]],
      "overview-chart-latency": [["p50", "p95"], [
        { label: "p50 ms", stroke: cssVar("--accent"), width: 2, spanGaps: true, points: { show: true, size: 5 } },
        { label: "p95 ms", stroke: cssVar("--warn"), width: 2, spanGaps: true, points: { show: true, size: 5 } }
      ]]
    };
    Object.keys(specs).forEach(function (id) {
      var node = document.getElementById(id);
      if (!node) return;
      var data = chartData(series, specs[id][0]);
      if (charts[id]) {
        charts[id].setData(data);
      } else {
        charts[id] = new window.uPlot(chartOptions(node, specs[id][1]), data, node);
        watchSize(id, node);
      }
    });
    lastSeries = series;
  }

  // Charts follow their card's width (a phone, a resized window, the sidebar toggled).
  var observed = {};
  function watchSize(id, node) {
    if (observed[id] || !("ResizeObserver" in window)) return;
    observed[id] = new ResizeObserver(function () {
      var width = Math.max(node.clientWidth, 200);
      if (charts[id] && charts[id].width !== width) charts[id].setSize({ width: width, height: 180 });
    });
    observed[id].observe(node);
  }

  var lastSeries = config.series;
  function redrawCharts() {
    Object.keys(charts).forEach(function (id) { charts[id].destroy(); delete charts[id]; });
    drawCharts(lastSeries);
  }
  // Colours follow the theme: redraw when it changes; sizes follow the window.
  new MutationObserver(redrawCharts).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  // --- the socket, its backoff and the polling fallback -------------------------------------
  var socket = null;
  var attempts = 0;
  var pollTimer = null;
  var POLL_AFTER_FAILURES = 3;
  var POLL_SECONDS = 5;

  function poll() {
    if (document.hidden) return;
    fetch(config.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) { stopPolling(); setStatus("Signed out", "bad"); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (figures) { if (figures) apply(figures); })
      .catch(function () {});
  }
  function startPolling() {
    if (pollTimer !== null) return;
    setStatus("Refreshing every " + POLL_SECONDS + " s", "warn");
    pollTimer = window.setInterval(poll, POLL_SECONDS * 1000);
    poll();
  }
  function stopPolling() {
    if (pollTimer !== null) window.clearInterval(pollTimer);
    pollTimer = null;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + config.socket);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      attempts = 0;
      stopPolling();
      setStatus("Live", "ok");
      socket.send(JSON.stringify({ type: "subscribe", topics: config.topics }));
    });
    socket.addEventListener("message", function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "update") {
        if (frame.topic === "requests.stream") {
          streamRequests(frame.data.requests || []);
        } else if (FIGURES_OF[frame.topic] && handlers[FIGURES_OF[frame.topic]]) {
          handlers[FIGURES_OF[frame.topic]](frame.data);
        }
      }
    });
    socket.addEventListener("close", function (event) {
      socket = null;
      if (event.code === 4401) {
        setStatus("Signed out: sign in again to see live figures", "bad");
        announce("You were signed out. Live figures stopped.");
        return;
      }
      if (event.code === 4403) {
        setStatus("Your permissions changed: reload the page", "bad");
        announce("Your permissions changed. Live figures stopped.");
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    attempts += 1;
    if (attempts >= POLL_AFTER_FAILURES) startPolling();
    else setStatus("Reconnecting\u2026", "warn");
    var delay = Math.min(30, Math.pow(2, attempts - 1)) * (0.75 + Math.random() * 0.5);
    window.setTimeout(connect, delay * 1000);
  }

  if (config.series) drawCharts(config.series);
  if (config.topics.length) {
    if ("WebSocket" in window) connect(); else startPolling();
  }
})();
