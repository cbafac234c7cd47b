// The widgets Flask-Admin builds, in Chinese and with native date inputs.
// - select2 3.5: its own zh-CN locale (static/vendor/select2) covers most texts; the two it lacks
//   (the screen-reader count and the load error) are set here.
// - Dates in list filters: Flask-Admin styles them with a daterangepicker (English Apply/Cancel,
//   typed text garbled); here they become the browser's own date inputs, as in every form
//   (views/dates.py), posting the text Flask-Admin's filters read ("2026-01-01 to 2026-01-31").
(function () {
  "use strict";
  var $ = window.jQuery;
  if (!$) { return; }

  if ($.fn.select2) {
    $.extend($.fn.select2.defaults, {
      formatMatches: function (matches) {
        return matches === 1 ? "找到1项，按回车选择" : "找到" + matches + "项，用上下方向键选择";
      },
      formatAjaxError: function () { return "加载失败，请稍后重试"; }
    });
  }

  // select2 draws "×" links (remove a chosen item, clear the box) with no text: a screen reader
  // would say "link" only. They get a name as they appear.
  function nameCloseLinks(root) {
    $(root).find(".select2-search-choice-close:not([aria-label])").each(function () {
      var item = $(this).closest(".select2-search-choice").text().trim();
      this.setAttribute("aria-label", item ? "移除：" + item : "清除所选");
      this.setAttribute("title", this.getAttribute("aria-label"));
    });
  }
  // Flask-Admin's column help (a "?" link whose words are only in a tooltip): the tooltip moves the
  // title away, so the words are kept as the link's name.
  function nameHelpLinks(root) {
    $(root).find("[data-role=tooltip]:not([aria-label])").each(function () {
      var words = this.getAttribute("title") || this.getAttribute("data-original-title");
      if (words) { this.setAttribute("aria-label", "说明：" + words); }
    });
  }
  nameHelpLinks(document);

  $(function () {
    nameHelpLinks(document);
    nameCloseLinks(document);
    if (window.MutationObserver) {
      new MutationObserver(function () { nameCloseLinks(document); })
        .observe(document.body, {childList: true, subtree: true});
    }
  });

  var KINDS = {
    datepicker: {type: "date", range: false},
    daterangepicker: {type: "date", range: true},
    datetimepicker: {type: "datetime-local", range: false},
    datetimerangepicker: {type: "datetime-local", range: true}
  };

  // "2026-01-01 09:00:00" (Flask-Admin's filter text) <-> "2026-01-01T09:00" (the input's value)
  function toInput(text, type) {
    text = $.trim(text || "");
    if (type === "date") { return text.slice(0, 10); }
    return text.slice(0, 16).replace(" ", "T");
  }
  function fromInput(value, type) {
    if (!value) { return ""; }
    return type === "date" ? value : value.replace("T", " ") + ":00";
  }

  function nativeDates($el, name) {
    var kind = KINDS[name];
    if (!kind) { return false; }
    var label = $el.attr("aria-label") || "日期";
    var parts = ($el.val() || "").split(" to ");
    var inputs = [];
    var count = kind.range ? 2 : 1;
    var $box = $('<span class="native-date-range"></span>');
    for (var i = 0; i < count; i++) {
      var $input = $('<input class="form-control form-control-sm d-inline-block">')
        .attr("type", kind.type)
        .attr("aria-label", kind.range ? label + (i ? "（止）" : "（起）") : label)
        .val(toInput(parts[i], kind.type));
      inputs.push($input);
      if (i) { $box.append('<span class="mx-1">至</span>'); }
      $box.append($input);
    }
    function sync() {
      var values = inputs.map(function ($i) { return fromInput($i.val(), kind.type); });
      $el.val(kind.range ? values.join(" to ") : values[0]).trigger("change");
    }
    inputs.forEach(function ($i) { $i.on("change input", sync); });
    $el.attr("type", "hidden").after($box);
    return true;
  }

  // A row added to an inline list (添加 监护人) gets its inputs renamed by Flask-Admin, but its
  // labels keep pointing at the template's ids: clicking 父 or 主要监护人 then did nothing.
  function relabel(row) {
    $(row).find("label[for]").each(function () {
      var target = this.getAttribute("for");
      if (document.getElementById(target)) { return; }
      var match = $(row).find("[id$='-" + target + "']").get(0);
      if (match) { this.setAttribute("for", match.id); }
    });
  }

  $(document).on("adminFormReady", function () {
    var form = window.faForm;
    if (!form) { return; }
    form.addFieldConverter(nativeDates);
    var addInlineField = form.addInlineField;
    form.addInlineField = function (el, elID) {
      var result = addInlineField.apply(this, arguments);
      var rows = $(el).closest(".inline-field-list, [id='" + elID + "']").find(".inline-field");
      relabel(rows.length ? rows.last() : $("#" + elID + " .inline-field").last());
      return result;
    };
  });
})();
