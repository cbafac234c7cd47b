// 一人一档 print layout: the print button (no inline handlers under the Content-Security-Policy).
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("dossier-print-button");
    if (button) {
      button.addEventListener("click", function () { window.print(); });
    }
  });
})();
