// Bulk 线上知识推送: tick or untick every child shown.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("tick-all");
    if (!all) { return; }
    all.addEventListener("change", function () {
      document.querySelectorAll(".child-tick").forEach(function (box) { box.checked = all.checked; });
    });
  });
})();
