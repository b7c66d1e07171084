/* The spend page's chart, drawn with the vendored uPlot from the JSON the page carries
   (#spend-chart-data: "t" the days' starts in unix seconds, "cost" the spend of each day,
   "budgets" each budget's daily equivalent). Spend is drawn as bars, each budget as a
   dashed line; the table under the chart holds the same figures. Redrawn when htmx swaps
   the figures (a filter changed), when the theme changes and when the card is resized. */
(function () {
  "use strict";
  var HEIGHT = 240;
  var LINE_COLOURS = ["--warn", "--bad", "--ok", "--muted"];
  var chart = null;
  var observer = null;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  function dollars(value) {
    if (value === null || value === undefined) return "\u2013";
    var digits = value >= 100 || value === 0 ? 2 : (value >= 0.01 ? 4 : 6);
    return "$" + value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  // The y axis: whole dollars and cents above a dollar, three significant digits below.
  function tick(value) {
    if (value >= 1) return "$" + value.toLocaleString("en-US", { maximumFractionDigits: 2 });
    return "$" + String(Number(value.toPrecision(3)));
  }

  function destroy() {
    if (observer) { observer.disconnect(); observer = null; }
    if (chart) { chart.destroy(); chart = null; }
  }

  function draw() {
    destroy();
    var node = document.getElementById("spend-chart");
    var source = document.getElementById("spend-chart-data");
    if (!node || !source || !window.uPlot) return;
    var data = JSON.parse(source.textContent);
    if (!data.t.length) return;
    var axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--border") }, ticks: { stroke: cssVar("--border") } };
    var series = [
      { value: function (u, ts) { return ts === null ? "\u2013" : uPlot.fmtDate("{YYYY}-{MM}-{DD}")(uPlot.tzDate(new Date(ts * 1000), "Etc/UTC")); } },
      {
        label: "Spend",
        stroke: cssVar("--accent"),
        fill: cssVar("--accent-soft"),
        width: 1,
        paths: uPlot.paths.bars({ size: [0.7, 48] }),
        points: { show: false },
        value: function (u, v) { return dollars(v); }
      }
    ];
    var columns = [data.t, data.cost];
    data.budgets.forEach(function (budget, i) {
      series.push({
        label: budget.label,
        stroke: cssVar(LINE_COLOURS[i % LINE_COLOURS.length]),
        width: 2,
        dash: [6, 4],
        points: { show: false },
        value: function (u, v) { return dollars(v); }
      });
      columns.push(budget.values);
    });
    var halfDay = 43200;
    chart = new uPlot({
      width: Math.max(node.clientWidth, 200),
      height: HEIGHT,
      // Days are UTC days: label them so whatever the browser's zone.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      legend: { show: true },
      scales: {
        x: { time: true, range: function (u, min, max) { return [min - halfDay, max + halfDay]; } },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: [axis, Object.assign({}, axis, { size: 72, values: function (u, ticks) { return ticks.map(tick); } })],
      series: series
    }, columns, node);
    if ("ResizeObserver" in window) {
      observer = new ResizeObserver(function () {
        var width = Math.max(node.clientWidth, 200);
        if (chart && chart.width !== width) chart.setSize({ width: width, height: HEIGHT });
      });
      observer.observe(node);
    }
  }

  // htmx fires this on every element it settled: draw once, for the figures' container.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "spend-figures") draw();
  });
  // Colours follow the theme.
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  draw();
})();
