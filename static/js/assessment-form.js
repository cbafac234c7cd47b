// Live total and level of the assessment form. The server recomputes on save and is authoritative;
// this only mirrors the rule version the form was rendered with (thresholds in data-levels).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("assessment-form");
    if (!form) { return; }
    var levels = JSON.parse(form.dataset.levels || "[]");  // green first, each {value, label, meaning, min}
    var indicators = form.querySelectorAll(".indicator");
    var totalBox = document.getElementById("live-total");
    var levelBox = document.getElementById("live-level");
    var meaningBox = document.getElementById("live-meaning");
    var answeredBox = document.getElementById("live-answered");
    var overrideSelect = document.getElementById("override_level");
    var reasonBox = document.getElementById("override_reason");

    function levelFor(total, vetoed) {
      var red = levels[levels.length - 1];
      if (vetoed) { return red; }
      for (var i = 0; i < levels.length; i++) {
        if (total >= levels[i].min) { return levels[i]; }
      }
      return red;
    }

    function update() {
      var total = 0, answered = 0;
      indicators.forEach(function (box) {
        var checked = box.querySelector(".score-input:checked");
        if (checked) { total += parseInt(checked.value, 10); answered += 1; }
      });
      var vetoed = form.querySelectorAll(".veto-input:checked").length > 0;
      totalBox.textContent = String(total);
      answeredBox.textContent = "已评 " + answered + " / " + indicators.length + " 项" +
        (answered < indicators.length ? "（未评完，等级为预估）" : "");
      var level = levelFor(total, vetoed);
      levels.forEach(function (l) { levelBox.classList.remove("level-" + l.value); });
      levelBox.classList.add("level-" + level.value);
      levelBox.dataset.level = level.value;
      levelBox.textContent = level.label + (vetoed ? "（否决项）" : "");
      meaningBox.textContent = level.meaning;
      var barTotal = document.getElementById("bar-total");
      var barLevel = document.getElementById("bar-level");
      if (barTotal && barLevel) {
        barTotal.textContent = String(total);
        levels.forEach(function (l) { barLevel.classList.remove("level-" + l.value); });
        barLevel.classList.add("level-" + level.value);
        barLevel.textContent = levelBox.textContent;
      }
      if (overrideSelect && reasonBox) {
        var overridden = overrideSelect.value && overrideSelect.value !== level.value;
        reasonBox.required = !!overridden;
      }
    }

    form.addEventListener("change", update);
    if (form.querySelector(".score-input:checked") || !form.querySelector("fieldset[disabled]")) { update(); }
  });
})();
