// Flask-Admin 2.2 templates use a few inline onclick handlers, which our Content-Security-Policy
// forbids. This binds the same calls from the attribute text, without eval.
(function () {
  "use strict";
  var patterns = [
    [/^return faHelpers\.safeConfirm\('(.*)'\);?$/, function (el, m, ev) {
      if (!window.confirm(m[1])) { ev.preventDefault(); }
    }],
    [/^return confirm\('(.*)'\);?$/, function (el, m, ev) {
      if (!window.confirm(m[1])) { ev.preventDefault(); }
    }],
    [/^return modelActions\.execute\('(.*)'\);?$/, function (el, m, ev) {
      ev.preventDefault(); window.modelActions.execute(m[1]);
    }],
    [/^faForm\.addInlineField\(this, '(.*)'\);?$/, function (el, m, ev) {
      ev.preventDefault(); window.faForm.addInlineField(el, m[1]);
    }],
    [/^return false;?$/, function (el, m, ev) { ev.preventDefault(); }]
  ];
  function bind(root) {
    root.querySelectorAll("[onclick]").forEach(function (el) {
      var code = el.getAttribute("onclick").trim();
      el.removeAttribute("onclick");
      patterns.some(function (p) {
        var m = code.match(p[0]);
        if (m) { el.addEventListener("click", function (ev) { p[1](el, m, ev); }); }
        return !!m;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    bind(document);
    var reveal = document.getElementById("reveal-id");
    if (reveal) {
      reveal.addEventListener("click", function () {
        fetch(reveal.dataset.url, {method: "POST", headers: {"X-CSRFToken": window.CSRF_TOKEN}})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            document.getElementById("revealed-id").textContent = data.id_number || data.error;
          });
      });
    }
  });
})();
