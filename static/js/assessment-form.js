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
      var complete = answered === indicators.length;
      totalBox.textContent = String(total);
      answeredBox.textContent = "已评 " + answered + " / " + indicators.length + " 项";
      // No level before every indicator is scored (a red "红" after one answer misleads); a veto
      // item decides red whatever the scores.
      var level = (complete || vetoed) ? levelFor(total, vetoed) : null;
      var barTotal = document.getElementById("bar-total");
      var barLevel = document.getElementById("bar-level");
      [levelBox, barLevel].forEach(function (box) {
        if (!box) { return; }
        levels.forEach(function (l) { box.classList.remove("level-" + l.value); });
        box.classList.toggle("level-unscored", !level);
        if (level) { box.classList.add("level-" + level.value); }
        box.textContent = level ? level.label + (vetoed ? "（否决项）" : "") : "未评分";
      });
      levelBox.dataset.level = level ? level.value : "";
      meaningBox.textContent = level ? level.meaning :
        "还有 " + (indicators.length - answered) + " 项未评分，全部评完后显示等级";
      if (barTotal) {
        barTotal.textContent = complete ? String(total) : total + "（已评 " + answered + "/" + indicators.length + "）";
      }
      if (overrideSelect && reasonBox) {
        var overridden = overrideSelect.value && (!level || overrideSelect.value !== level.value);
        reasonBox.required = !!overridden;
      }
    }

    form.addEventListener("change", update);
    if (!form.querySelector("fieldset[disabled]")) { update(); }
  });
})();
