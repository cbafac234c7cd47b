// The case page: the stage control shows the gate of the chosen move, and the closing box only for 结案;
// the 会商 form adds rows for more 分工.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var select = document.getElementById("to_stage");
    var closing = document.getElementById("closing-box");
    if (select) {
      var update = function () {
        document.querySelectorAll("#move-form .gate").forEach(function (gate) {
          gate.hidden = gate.dataset.stage !== select.value;
        });
        if (closing) { closing.hidden = select.value !== "closed"; }
      };
      select.addEventListener("change", update);
      update();
    }

    var addRow = document.getElementById("add-action-row");
    var rows = document.getElementById("action-rows");
    var count = document.getElementById("action_rows");
    if (addRow && rows && count) {
      addRow.addEventListener("click", function () {
        var last = rows.querySelector(".action-row:last-child");
        var next = parseInt(count.value, 10);
        var copy = last.cloneNode(true);
        copy.querySelectorAll("input").forEach(function (input) {
          input.name = input.name.replace(/_\d+$/, "_" + next);
          input.id = input.name;
          input.value = "";
        });
        copy.querySelectorAll("label").forEach(function (label) {
          label.htmlFor = label.htmlFor.replace(/_\d+$/, "_" + next);
        });
        var number = copy.querySelector(".action-number");
        if (number) { number.textContent = String(next + 1); }
        rows.appendChild(copy);
        count.value = String(next + 1);
      });
    }
  });
})();
