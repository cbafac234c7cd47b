// Mandatory-report intake: an anonymous report hides the reporter's name and phone.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var anonymous = document.getElementById("anonymous");
    if (!anonymous) { return; }
    var fields = ["reporter_name", "reporter_phone"].map(function (id) {
      var input = document.getElementById(id);
      return input ? input.closest(".form-group") : null;
    }).filter(Boolean);
    function sync() {
      fields.forEach(function (group) {
        group.style.display = anonymous.checked ? "none" : "";
        var input = group.querySelector("input");
        if (input && anonymous.checked) { input.value = ""; }
      });
    }
    anonymous.addEventListener("change", sync);
    sync();
  });
})();
