// 资金使用检查: budget against spending as ECharts bars (the tables below stay the source of truth).
(function () {
  "use strict";
  var holder = document.getElementById("fund-chart-data");
  if (!holder || !window.echarts) { return; }
  var data = JSON.parse(holder.textContent);
  var money = function (v) { return "¥" + Number(v).toLocaleString("zh-CN", { minimumFractionDigits: 2, maximumFractionDigits: 2 }); };
  function draw(id, names, series) {
    var el = document.getElementById(id);
    if (!el || !names.length) { if (el) { el.style.display = "none"; } return; }
    var chart = window.echarts.init(el);
    chart.setOption({
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: money },
      legend: { top: 4 },
      grid: { left: 90, right: 20, top: 36, bottom: 40 },
      xAxis: { type: "category", data: names, axisLabel: { interval: 0, width: 120, overflow: "truncate" } },
      yAxis: { type: "value", axisLabel: { formatter: function (v) { return v >= 10000 ? (v / 10000) + "万" : v; } } },
      series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  draw("chart-sources", data.sources.names, [
    { name: "预算", type: "bar", data: data.sources.budget, itemStyle: { color: "#9ecae1" } },
    { name: "已支付", type: "bar", data: data.sources.paid, itemStyle: { color: "#2e9d57" } },
    { name: "已审批待付", type: "bar", data: data.sources.approved, itemStyle: { color: "#e6b800" } }
  ]);
  draw("chart-categories", data.categories.names, [
    { name: "已支付", type: "bar", stack: "spent", data: data.categories.paid, itemStyle: { color: "#2e9d57" } },
    { name: "已审批待付", type: "bar", stack: "spent", data: data.categories.approved, itemStyle: { color: "#e6b800" } }
  ]);
}());
