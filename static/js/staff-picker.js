// Staff pickers (views/staff_picker.py): a Staff dropdown follows the form's village field.
// strict: only that village's people (and town-level ones) can be chosen; otherwise they are listed
// first. default: an empty picker takes the village's first person (儿童主任 follows 村).
(function () {
  "use strict";
  var $ = window.jQuery;

  function setValue(select, value) {
    if ($ && $(select).data("select2")) { $(select).select2("val", value); } else { select.value = value; }
    select.dispatchEvent(new Event("change", {bubbles: true}));
  }

  function follow(select, cfg, form, initial) {
    var source = form.querySelector('[name="' + cfg.follow + '"]');
    if (!source) { return; }
    var village = source.value && source.value !== "__None" ? source.value : "";
    var options = Array.prototype.slice.call(select.options);
    var own = [], town = [], others = [], blank = [];
    options.forEach(function (opt) {
      var v = cfg.villages[opt.value];
      if (opt.value === "" || opt.value === "__None" || opt.value === "__keep") { blank.push(opt); return; }
      if (village && String(v) === village) { own.push(opt); } else if (v === null) { town.push(opt); } else { others.push(opt); }
      opt.disabled = !!(cfg.strict && village && v !== null && String(v) !== village);
    });
    blank.concat(own, town, others).forEach(function (opt) { select.appendChild(opt); });
    var current = select.value;
    var currentOk = current && current !== "__None" && !(select.selectedOptions[0] || {}).disabled;
    if (cfg.default && village && own.length && (!currentOk || (!initial && cfg.villages[current] !== null && String(cfg.villages[current]) !== village))) {
      setValue(select, own[0].value);
    } else if (!currentOk && current && current !== "__None") {
      setValue(select, blank.length ? blank[0].value : "");
    }
  }

  function init() {
    document.querySelectorAll("select[data-staff-picker]").forEach(function (select) {
      var cfg = JSON.parse(select.getAttribute("data-staff-picker"));
      var form = select.form;
      if (!form || !cfg.follow) { return; }
      var source = form.querySelector('[name="' + cfg.follow + '"]');
      if (!source) { return; }
      var handler = function () { follow(select, cfg, form, false); };
      if ($) { $(source).on("change", handler); } else { source.addEventListener("change", handler); }
      follow(select, cfg, form, true);
    });
  }

  if ($) { $(init); } else { document.addEventListener("DOMContentLoaded", init); }
})();
