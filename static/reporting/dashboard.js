/* The finance dashboard's charts (templates/reporting/dashboard_panels.html): each
   <canvas class="dashboard-chart" data-chart="{Chart.js config}"> is drawn with the Chart.js
   that django-unfold ships, on load and again whenever htmx swaps the panels in. */
(function () {
  "use strict";

  function draw(root) {
    if (typeof Chart === "undefined" || !root || !root.querySelectorAll) {
      return;
    }
    var dark = document.documentElement.classList.contains("dark");
    root.querySelectorAll("canvas.dashboard-chart").forEach(function (canvas) {
      if (Chart.getChart(canvas)) {
        return;
      }
      var config;
      try {
        config = JSON.parse(canvas.dataset.chart);
      } catch (error) {
        return;
      }
      var tick = dark ? "#9ca3af" : "#6b7280";
      var grid = dark ? "#374151" : "#e5e7eb";
      Object.keys(config.options.scales || {}).forEach(function (axis) {
        var scale = config.options.scales[axis];
        scale.ticks = Object.assign({ color: tick }, scale.ticks || {});
        scale.grid = Object.assign({ color: grid }, scale.grid || {});
      });
      var legend = config.options.plugins && config.options.plugins.legend;
      if (legend) {
        legend.labels = Object.assign({ color: tick }, legend.labels || {});
      }
      new Chart(canvas, config);
    });
  }

  // Charts of panels about to be replaced are released before the swap. An answer that is
  // not the panels (the login page after the session ended) leaves the page as it is.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "dashboard-panels") {
      var text = (event.detail.xhr && event.detail.xhr.responseText) || "";
      if (text.indexOf('id="dashboard-panels"') === -1) {
        event.detail.shouldSwap = false;
        return;
      }
    }
    if (target && target.querySelectorAll) {
      target.querySelectorAll("canvas.dashboard-chart").forEach(function (canvas) {
        var chart = Chart.getChart(canvas);
        if (chart) {
          chart.destroy();
        }
      });
    }
  });
  // New panels' canvases have no chart yet: draw them.
  document.addEventListener("htmx:afterSettle", function () {
    draw(document);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      draw(document);
    });
  } else {
    draw(document);
  }
})();
