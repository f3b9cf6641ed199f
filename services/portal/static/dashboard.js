/* The district dashboard's charts (Apache ECharts, vendored): each `[data-chart]` element is
   drawn from the figures its section's table shows; the table is the text alternative and is
   always on the page, so nothing is lost without JavaScript. */
(function () {
  "use strict";

  var PALETTE = ["#0b4f8a", "#1d6b36", "#7a4b00", "#a4161a", "#4a4a4a"];

  function draw(element) {
    if (!window.echarts || element.dataset.drawn) {
      return;
    }
    var spec = JSON.parse(element.dataset.chart);
    var horizontal = spec.kind === "bar";
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    var category = { type: "category", data: spec.labels, axisLabel: { color: "#1b1b1b", width: 120, overflow: "truncate" } };
    var value = { type: "value", minInterval: 1, axisLabel: { color: "#1b1b1b" } };
    chart.setOption({
      color: PALETTE,
      animation: false,
      grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis" },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? Object.assign({ inverse: true }, category) : value,
      series: spec.series.map(function (s) {
        return { name: s.name, type: spec.kind, data: s.values, label: { show: horizontal, position: "right", color: "#1b1b1b" } };
      })
    });
    element.dataset.drawn = "1";
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function drawAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
