// The activity form: moving the start moves the end with it (a copied class keeps its two hours),
// and a training's end is asked for, since its hours are counted from the two.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  function parse(value) { return value ? new Date(value) : null; }
  function local(date) {
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) + "T" +
      pad(date.getHours()) + ":" + pad(date.getMinutes());
  }
  ready(function () {
    var start = document.getElementById("starts_at");
    var end = document.getElementById("ends_at");
    if (!start || !end) { return; }
    var before = parse(start.value);
    start.addEventListener("change", function () {
      var now = parse(start.value);
      var ends = parse(end.value);
      if (before && now && ends && !isNaN(before) && !isNaN(now) && !isNaN(ends)) {
        end.value = local(new Date(ends.getTime() + (now.getTime() - before.getTime())));
      }
      before = now;
    });
  });
})();
