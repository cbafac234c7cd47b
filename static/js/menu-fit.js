// The main menu on one row: when the groups do not fit beside the brand and the user menu, the last
// groups move, in order, into 更多 (and back when the window grows). Below 992 px the menu is a
// collapsed list and nothing moves.
(function () {
  "use strict";
  var menu = document.getElementById("main-menu");
  var more = document.getElementById("menu-more");
  var moreItems = document.getElementById("menu-more-items");
  if (!menu || !more || !moreItems) { return; }

  function groups() {
    return Array.prototype.filter.call(menu.children, function (li) { return li !== more; });
  }

  function oneRow() {
    var items = groups().concat(more.hidden ? [] : [more]);
    if (!items.length) { return true; }
    var top = items[0].offsetTop;
    var bar = menu.closest(".navbar");
    var single = items[0].offsetHeight * 1.6 + 16;
    return items.every(function (li) { return li.offsetTop === top; }) &&
      (!bar || bar.offsetHeight <= single + 16) && menu.scrollWidth <= menu.clientWidth + 1;
  }

  function restore() {
    Array.prototype.slice.call(moreItems.children).forEach(function (li) {
      li.classList.remove("menu-more-group");
      menu.insertBefore(li, more);
    });
    more.hidden = true;
  }

  function fit() {
    restore();
    if (window.innerWidth < 992) { return; }
    var movable = groups().filter(function (li) { return li.classList.contains("dropdown"); });
    while (!oneRow() && movable.length > 1) {
      var li = movable.pop();
      more.hidden = false;
      li.classList.add("menu-more-group");
      moreItems.insertBefore(li, moreItems.firstChild);
    }
  }

  var timer = null;
  window.addEventListener("resize", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(fit, 100);
  });
  fit();
})();
