// 活动签到: find people on the roll by name, pinyin or ID last 4, tick with Enter, save once.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var root = document.getElementById("attendance");
    var form = document.getElementById("attendance-form");
    if (!root || !form) { return; }

    var tbody = document.querySelector("#roll tbody");
    var rows = Array.prototype.slice.call(tbody.rows);
    var search = document.getElementById("roll-search");
    var filters = {
      kind: document.getElementById("f-kind"),
      staffKind: document.getElementById("f-staff-kind"),
      village: document.getElementById("f-village"),
      category: document.getElementById("f-category"),
      level: document.getElementById("f-level"),
      state: document.getElementById("f-state")
    };
    var capacity = parseInt(root.dataset.capacity || "0", 10) || 0;
    var hiddenSigned = parseInt(root.dataset.hiddenSigned || "0", 10) || 0;
    var lastTicked = document.getElementById("last-ticked");
    var matchCount = document.getElementById("match-count");
    var dirtyNote = document.getElementById("dirty-note");
    var exportLink = document.getElementById("export-sheet");
    var visible = [];
    var focusIndex = 0;
    var dirty = false;
    var submitting = false;

    function box(tr) { return tr.cells[0].firstElementChild; }
    function ticked(tr) { return box(tr).checked; }

    // The same rules as services/attendance.find: last 4 of the ID, pinyin initials or full pinyin, Chinese.
    function matcher(text) {
      var term = (text || "").replace(/\s+/g, "");
      if (!term) { return null; }
      if (/^\d{3}[\dXx]$/.test(term)) {
        term = term.toUpperCase();
        return function (tr) { return (tr.dataset.d || "").toUpperCase() === term; };
      }
      if (/^[A-Za-z]+$/.test(term)) {
        term = term.toLowerCase();
        return function (tr) {
          return tr.dataset.i.indexOf(term) === 0 || tr.dataset.p.indexOf(term) === 0;
        };
      }
      return function (tr) { return tr.cells[1].textContent.indexOf(term) !== -1; };
    }

    function filterOk(tr) {
      var v = filters.kind && filters.kind.value;
      if (v && tr.dataset.k !== v) { return false; }
      v = filters.staffKind && filters.staffKind.value;
      if (v && tr.dataset.s !== v) { return false; }
      v = filters.village && filters.village.value;
      if (v && tr.dataset.v !== v) { return false; }
      v = filters.category && filters.category.value;
      if (v && (tr.dataset.c ? tr.dataset.c.split(",") : []).indexOf(v) === -1) { return false; }
      v = filters.level && filters.level.value;
      if (v && tr.dataset.l !== v) { return false; }
      v = filters.state && filters.state.value;
      if (v === "on" && !ticked(tr)) { return false; }
      if (v === "off" && ticked(tr)) { return false; }
      if (v === "last" && tr.dataset.last !== "1") { return false; }
      return true;
    }

    function apply() {
      var match = matcher(search.value);
      visible = [];
      rows.forEach(function (tr) {
        var ok = filterOk(tr) && (!match || match(tr));
        if (tr.hidden === ok) { tr.hidden = !ok; }
        if (ok) { visible.push(tr); }
      });
      matchCount.textContent = String(visible.length);
      // Enter ticks the first match not yet ticked.
      focusIndex = 0;
      for (var i = 0; i < visible.length; i++) {
        if (!ticked(visible[i])) { focusIndex = i; break; }
      }
      showFocus();
      if (exportLink) {
        var village = filters.village && filters.village.value;
        exportLink.href = exportLink.dataset.base + (village ? "&village=" + encodeURIComponent(village) : "");
      }
    }

    function showFocus() {
      var old = tbody.querySelector("tr.roll-focus");
      if (old) { old.classList.remove("roll-focus"); }
      var tr = visible[focusIndex];
      if (tr && search.value) {
        tr.classList.add("roll-focus");
        tr.scrollIntoView({block: "nearest"});
      }
    }

    function counts() {
      var n = 0;
      rows.forEach(function (tr) { if (ticked(tr)) { n += 1; } });
      var eligible = parseInt(root.dataset.eligible || "0", 10) || 0;
      var total = hiddenSigned + n;
      document.getElementById("att-ticked").textContent = String(n);
      document.getElementById("att-total").textContent = String(total);
      document.getElementById("att-rate").textContent = eligible ? (n * 100 / eligible).toFixed(1) + "%" : "—";
      var warning = document.getElementById("capacity-warning");
      if (capacity && total > capacity) {
        warning.hidden = false;
        warning.textContent = "签到人数 " + total + " 人，已超过人数上限（" + capacity + " 人）" + (total - capacity) + " 人，请核对场地与安全安排。";
      } else {
        warning.hidden = true;
      }
      var save = document.getElementById("save-attendance");
      if (save) { save.innerHTML = '<i class="fa fa-save"></i> 保存签到（' + n + "）"; }
    }

    function setTick(tr, on) {
      var input = box(tr);
      if (input.disabled || input.checked === on) { return false; }
      input.checked = on;
      tr.classList.toggle("table-success", on);
      if (!on && tr.dataset.new === "1") { tr.parentNode.removeChild(tr); rows.splice(rows.indexOf(tr), 1); }
      markDirty();
      return true;
    }

    function markDirty() {
      dirty = true;
      if (dirtyNote) { dirtyNote.hidden = false; }
      counts();
    }

    function announce(text) { if (lastTicked) { lastTicked.textContent = text; } }

    // More than one person matches what was typed: Enter shows them (relation, village, ID last 4)
    // and waits for a choice — a click, a digit, or ↑↓ and Enter. Never the first one by itself.
    var chooser = document.getElementById("match-chooser");
    var choices = [];
    var chosenIndex = 0;

    function describe(tr) {
      var cells = tr.cells;
      return [cells[1].textContent, cells[2].textContent, cells[4].textContent, cells[3].textContent,
        cells[5].textContent ? "身份证后4位 " + cells[5].textContent : ""].filter(Boolean).join(" · ");
    }

    function closeChooser() {
      choices = [];
      if (chooser) { chooser.hidden = true; chooser.innerHTML = ""; }
    }

    function openChooser(rows) {
      choices = rows.slice(0, 9);
      chosenIndex = 0;
      chooser.innerHTML = "";
      var head = document.createElement("div");
      head.className = "small font-weight-bold mb-1";
      head.textContent = "“" + search.value + "”匹配 " + rows.length + " 人，请选择（数字键或↑↓回车，Esc 取消）" +
        (rows.length > choices.length ? "；只列出前 9 人，请多输入几个字" : "");
      chooser.appendChild(head);
      choices.forEach(function (tr, i) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-sm btn-outline-primary d-block text-left w-100 mb-1 match-choice";
        button.setAttribute("role", "option");
        button.dataset.index = String(i);
        button.textContent = (i + 1) + ". " + describe(tr);
        button.addEventListener("click", function () { choose(i); });
        chooser.appendChild(button);
      });
      chooser.hidden = false;
      markChosen();
    }

    function markChosen() {
      Array.prototype.forEach.call(chooser.querySelectorAll(".match-choice"), function (b, i) {
        b.classList.toggle("active", i === chosenIndex);
        b.setAttribute("aria-selected", i === chosenIndex ? "true" : "false");
      });
    }

    function tickOne(tr) {
      if (setTick(tr, true)) {
        announce("已勾选：" + tr.cells[1].textContent + "（" + tr.cells[3].textContent + "）");
      } else {
        announce(tr.cells[1].textContent + " 已勾选过");
      }
      search.value = "";
      closeChooser();
      apply();
      search.focus();
    }

    function choose(i) { if (choices[i]) { tickOne(choices[i]); } }

    function enter() {
      var term = search.value.replace(/\s+/g, "");
      if (!term) { return; }
      var open = visible.filter(function (tr) { return !ticked(tr); });
      if (!visible.length) { announce("没有找到“" + search.value + "”"); return; }
      if (!open.length) { announce(visible[0].cells[1].textContent + " 已勾选过"); search.value = ""; apply(); return; }
      var exact = open.filter(function (tr) { return tr.cells[1].textContent === term; });
      if (open.length === 1) { tickOne(open[0]); return; }
      if (exact.length === 1) { tickOne(exact[0]); return; }
      openChooser(open);
    }

    search.addEventListener("input", function () { closeChooser(); apply(); });
    search.addEventListener("keydown", function (ev) {
      if (choices.length) {
        if (/^[1-9]$/.test(ev.key) && Number(ev.key) <= choices.length) { ev.preventDefault(); choose(Number(ev.key) - 1); return; }
        if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          chosenIndex = (chosenIndex + (ev.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
          markChosen();
          return;
        }
        if (ev.key === "Enter") { ev.preventDefault(); choose(chosenIndex); return; }
        if (ev.key === "Escape") { ev.preventDefault(); closeChooser(); return; }
      }
      if (ev.key === "Enter") {
        ev.preventDefault();
        enter();
      } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        if (!visible.length) { return; }
        focusIndex = (focusIndex + (ev.key === "ArrowDown" ? 1 : visible.length - 1)) % visible.length;
        showFocus();
      } else if (ev.key === "Escape") {
        search.value = "";
        closeChooser();
        apply();
      }
    });

    Object.keys(filters).forEach(function (name) {
      if (filters[name]) { filters[name].addEventListener("change", apply); }
    });

    tbody.addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr");
      if (!tr) { return; }
      var input = box(tr);
      if (ev.target === input) {
        tr.classList.toggle("table-success", input.checked);
        if (!input.checked && tr.dataset.new === "1") { tr.parentNode.removeChild(tr); rows.splice(rows.indexOf(tr), 1); }
        markDirty();
        return;
      }
      setTick(tr, !input.checked);
    });

    function bulk(on) {
      var n = 0;
      visible.slice().forEach(function (tr) { if (setTick(tr, on)) { n += 1; } });
      announce((on ? "已勾选 " : "已取消 ") + n + " 人");
      apply();
    }
    var tickShown = document.getElementById("tick-shown");
    if (tickShown) { tickShown.addEventListener("click", function () { bulk(true); }); }
    var untickShown = document.getElementById("untick-shown");
    if (untickShown) { untickShown.addEventListener("click", function () { bulk(false); }); }

    // A walk-in becomes a ticked row of its own, saved with everything else.
    var walkName = document.getElementById("walkin-name");
    var walkVillage = document.getElementById("walkin-village");
    function addWalkIn() {
      var name = (walkName.value || "").trim();
      if (!name) { walkName.focus(); return; }
      var tr = document.createElement("tr");
      var villageName = walkVillage.options[walkVillage.selectedIndex] ? walkVillage.options[walkVillage.selectedIndex].text : "";
      tr.dataset.k = "walk_in";
      tr.dataset.v = walkVillage.value;
      tr.dataset.c = "";
      tr.dataset.l = "";
      tr.dataset.p = "";
      tr.dataset.i = "";
      tr.dataset.d = "";
      tr.dataset.new = "1";
      tr.className = "table-success";
      var tick = document.createElement("td");
      tick.className = "tick-col";
      var input = document.createElement("input");
      input.type = "checkbox";
      input.name = "walkin";
      input.checked = true;
      input.value = JSON.stringify({name: name, village: walkVillage.value});
      input.setAttribute("aria-label", name);
      tick.appendChild(input);
      tr.appendChild(tick);
      [name, "临时签到", villageName, "临时到场", "", "", ""].forEach(function (text) {
        var td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tbody.insertBefore(tr, tbody.firstChild);
      rows.unshift(tr);
      walkName.value = "";
      announce("已添加临时到场：" + name);
      markDirty();
      apply();
    }
    var walkAdd = document.getElementById("walkin-add");
    if (walkAdd) {
      walkAdd.addEventListener("click", addWalkIn);
      walkName.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { ev.preventDefault(); addWalkIn(); }
      });
    }

    document.addEventListener("keydown", function (ev) {
      if ((ev.ctrlKey || ev.metaKey) && (ev.key === "s" || ev.key === "S")) {
        ev.preventDefault();
        if (document.getElementById("save-attendance")) { form.requestSubmit(); }
      }
    });
    form.addEventListener("submit", function () { submitting = true; });
    window.addEventListener("beforeunload", function (ev) {
      if (dirty && !submitting) { ev.preventDefault(); ev.returnValue = ""; }
    });

    apply();
    counts();
    if (dirtyNote) { dirtyNote.hidden = true; }
  });
})();
