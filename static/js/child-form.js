// The child form (儿童名册 新增/编辑): the 身份证号 is checked while it is typed (region after 6
// digits, birth date after 14, the check digit and duplicates at 18; services/register.py answers,
// the save checks again), and birth date, gender and age fill in at once. A guardian row either
// types a new guardian or picks a sibling's: picking one hides the new-guardian fields.
(function () {
  "use strict";
  var $ = window.jQuery;

  function ready(fn) {
    if ($) { $(fn); } else if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function setSelect(select, value) {
    if (!select) { return; }
    if ($ && $(select).data("select2")) { $(select).select2("val", value); } else { select.value = value; }
  }

  function idCheck(input) {
    var form = input.form;
    var config = document.getElementById("child-form-config");
    var url = config && config.getAttribute("data-id-check-url");
    if (!url) { return; }
    var box = document.createElement("div");
    box.id = "id-check";
    box.className = "small mt-1";
    box.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", box);
    var birth = form.querySelector("#birth_date");
    var gender = form.querySelector("#gender");
    var age = document.createElement("span");
    age.id = "age-note";
    age.className = "ml-2 font-weight-bold";
    if (birth) { birth.insertAdjacentElement("afterend", age); }
    var timer = null, asked = "";

    function show(answer) {
      var parts = [answer.message];
      if (answer.region) { parts.push(answer.region); }
      if (answer.birth_date) { parts.push("出生 " + answer.birth_date); }
      if (answer.gender_label) { parts.push(answer.gender_label); }
      if (answer.age !== undefined && answer.age !== null) { parts.push(answer.age + "岁"); }
      box.textContent = parts.filter(Boolean).join(" · ");
      box.className = "small mt-1 " + (answer.state === "error" ? "text-danger" : answer.state === "ok" ? "text-success-strong" : "text-secondary-strong");
      input.classList.toggle("is-invalid", answer.state === "error");
      input.classList.toggle("is-valid", answer.state === "ok");
      if (answer.birth_date && birth) { birth.value = answer.birth_date; }
      if (answer.gender && gender) { setSelect(gender, answer.gender); }
      age.textContent = (answer.age !== undefined && answer.age !== null) ? answer.age + " 岁" : "";
    }

    function ask() {
      var value = input.value.trim();
      if (value === asked) { return; }
      asked = value;
      var child = config.getAttribute("data-child-id") || "";
      fetch(url + "?id_number=" + encodeURIComponent(value) + (child ? "&child=" + child : ""), {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (answer) { if (input.value.trim() === value) { show(answer); } })
        .catch(function () { box.textContent = ""; });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, input.value.trim().length >= 18 ? 0 : 200);
    });
    if (input.value.trim() && !input.readOnly) { ask(); }
  }

  // A guardian row: the sibling's guardian picked → the new-guardian fields are not needed.
  function guardianRows(form) {
    function sync(row) {
      var picked = row.querySelector("input[name$='-guardian']");
      var chosen = picked && picked.value && picked.value !== "__None";
      ["new_name", "new_phone", "new_id_number", "new_status"].forEach(function (name) {
        var input = row.querySelector("[name$='-" + name + "']");
        var group = input && input.closest(".form-group");
        if (group) { group.hidden = !!chosen; }
      });
    }
    function bind(row) {
      var picked = row.querySelector("input[name$='-guardian']");
      if (!picked || picked.dataset.bound) { return; }
      picked.dataset.bound = "1";
      if ($) { $(picked).on("change", function () { sync(row); }); }
      sync(row);
    }
    function all() { form.querySelectorAll(".inline-field").forEach(bind); }
    all();
    var list = form.querySelector("#guardian_links");
    if (list && window.MutationObserver) { new MutationObserver(all).observe(list, {childList: true, subtree: false}); }
  }

  ready(function () {
    var input = document.getElementById("id_number");
    if (input && input.form) { idCheck(input); guardianRows(input.form); }
  });
})();
