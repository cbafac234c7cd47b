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
  // 显示完整号码 beside a masked ID-number input of an edit form: the number replaces the mask.
  function bindRevealFields(root) {
    root.querySelectorAll("button.reveal-field").forEach(function (button) {
      button.addEventListener("click", function () {
        fetch(button.dataset.url, {method: "POST", headers: {"X-CSRFToken": window.CSRF_TOKEN, "Accept": "application/json"}})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            var input = document.getElementById(button.dataset.target);
            if (data.value !== undefined && input) {
              input.value = data.value;
              button.disabled = true;
              button.textContent = "已显示";
            } else {
              button.textContent = data.error || "无法显示";
            }
          });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    bind(document);
    bindRevealFields(document);
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
