// 风险地图: villages coloured by their risk mix (ECharts, served by the app), and the village × level matrix.
(function () {
  "use strict";

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;"}[c];
    });
  }

  function cell(text, href, cls) {
    var td = document.createElement("td");
    td.className = "text-right cell" + (cls ? " " + cls : "");
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function drawMatrix(data) {
    var body = document.querySelector("#village-matrix tbody");
    body.textContent = "";
    var keys = data.levels.map(function (l) { return l.value; }).concat(["none"]);
    var sums = {total: 0};
    keys.forEach(function (k) { sums[k] = 0; });
    data.villages.forEach(function (v) {
      var tr = document.createElement("tr");
      tr.dataset.village = v.name;
      var name = document.createElement("td");
      var link = document.createElement("a");
      link.href = v.links.all || "#";
      link.textContent = v.name;
      name.appendChild(link);
      tr.appendChild(name);
      keys.forEach(function (k) {
        var n = v.counts[k];
        sums[k] += n;
        var td = cell(String(n), n ? (v.links[k] || v.links.all) : null, n ? "" : "cell-zero");
        td.dataset.level = k;
        tr.appendChild(td);
      });
      sums.total += v.total;
      var total = cell(String(v.total), v.links.all, "font-weight-bold");
      total.dataset.level = "total";
      tr.appendChild(total);
      body.appendChild(tr);
    });
    var foot = document.createElement("tr");
    foot.className = "table-active font-weight-bold";
    var label = document.createElement("td");
    label.textContent = "合计";
    foot.appendChild(label);
    keys.concat(["total"]).forEach(function (k) { foot.appendChild(cell(String(sums[k]))); });
    body.appendChild(foot);
  }

  function tooltip(village, levels) {
    if (!village) { return ""; }
    var lines = ["<b>" + escapeHtml(village.name) + "</b>"];
    levels.forEach(function (l) {
      lines.push("<span style=\"display:inline-block;width:10px;height:10px;background:" + l.colour +
        "\"></span> " + l.label + "：" + village.counts[l.value]);
    });
    lines.push("未评估：" + village.counts.none);
    lines.push("合计：" + village.total);
    lines.push("风险指数：" + (village.risk_index === null ? "—" : village.risk_index));
    return lines.join("<br>");
  }

  // The area to show: every boundary and every village drawn only as a point, with a margin.
  function extent(data) {
    var lons = [], lats = [];
    function walk(coords) {
      if (typeof coords[0] === "number") { lons.push(coords[0]); lats.push(coords[1]); return; }
      coords.forEach(walk);
    }
    data.geojson.features.forEach(function (f) { walk(f.geometry.coordinates); });
    data.villages.forEach(function (v) {
      if (v.lon !== null && v.lat !== null) { lons.push(v.lon); lats.push(v.lat); }
    });
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var pad = Math.max(maxLon - minLon, maxLat - minLat) * 0.08 || 0.01;
    return [[minLon - pad, maxLat + pad], [maxLon + pad, minLat - pad]];
  }

  function drawMap(el, data) {
    var chart = window.echarts.init(el);
    var byName = {};
    data.villages.forEach(function (v) { byName[v.name] = v; });
    var colours = data.levels.map(function (l) { return l.colour; });
    var regions = data.villages.filter(function (v) { return v.has_boundary; }).map(function (v) {
      return {name: v.name, value: v.risk_index === null ? NaN : v.risk_index};
    });
    var points = data.villages.filter(function (v) { return !v.has_boundary && v.lon !== null && v.lat !== null; })
      .map(function (v) {
        var point = {name: v.name, value: [v.lon, v.lat, v.risk_index === null ? NaN : v.risk_index]};
        if (v.risk_index === null) { point.itemStyle = {color: "#ced4da"}; }  // nobody assessed yet
        return point;
      });
    var hasMap = data.geojson.features.length > 0;
    var option = {
      tooltip: {trigger: "item", formatter: function (p) { return tooltip(byName[p.name], data.levels); }},
      visualMap: {
        type: "continuous", min: 0, max: 100, left: 10, bottom: 10, calculable: false,
        text: ["高", "低"], inRange: {color: colours}, outOfRange: {color: "#e9ecef"}, seriesIndex: hasMap ? [0, 1] : [0]
      },
      series: []
    };
    if (hasMap) {
      window.echarts.registerMap("villages", data.geojson);
      option.geo = {
        map: "villages", roam: true, label: {show: true, fontSize: 11}, boundingCoords: extent(data),
        itemStyle: {areaColor: "#e9ecef", borderColor: "#666"}, emphasis: {label: {show: true}}
      };
      option.series.push({type: "map", geoIndex: 0, data: regions});
      option.series.push({type: "scatter", coordinateSystem: "geo", data: points, symbolSize: 18,
        label: {show: true, position: "right", formatter: "{b}"}});
    } else {
      option.xAxis = {type: "value", scale: true, show: false};
      option.yAxis = {type: "value", scale: true, show: false};
      option.series.push({type: "scatter", data: points, symbolSize: 24,
        label: {show: true, position: "right", formatter: "{b}"}});
    }
    chart.setOption(option);
    chart.on("click", function (p) {
      var v = byName[p.name];
      if (v && v.links.all) { window.location.href = v.links.all; }
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.ready = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("risk-map");
    if (!el) { return; }
    fetch(el.dataset.url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        drawMatrix(data);
        drawMap(el, data);
      });
  });
})();
