// 童护 field pages: 今日, the visit form and the attendance roll (static/field/*.html, the same shells
// online and offline), the sync bar, and — on every page of the panel for field staff — keeping the
// offline copy fresh and wiping it at logout. Data and sync live in core.js.
(function () {
  "use strict";
  var F = window.TonghuField;
  var page = document.body.getAttribute("data-page") || "desk";
  var state = {session: null, user: null, copy: null, online: navigator.onLine, syncing: false, result: null,
    synced: 0};

  // Whatever synced (this page, or the service worker's Background Sync) counts for the bar.
  function noteResult(result) {
    state.result = result;
    state.synced += (result && result.synced) || 0;
  }

  // ---------------------------------------------------------------- small helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) { return; }
      if (k === "text") { node.textContent = v; }
      else if (k === "on") { Object.keys(v).forEach(function (ev) { node.addEventListener(ev, v[ev]); }); }
      else if (k === "cls") { node.className = v; }
      else { node.setAttribute(k, v === true ? "" : v); }
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) { return; }
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function $(id) { return document.getElementById(id); }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function localDate(d) {
    d = d || new Date();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  }

  function addDays(iso, days) {
    var d = new Date(iso + "T00:00:00");
    d.setDate(d.getDate() + days);
    return localDate(d);
  }

  function daysBetween(a, b) {
    return Math.round((new Date(b + "T00:00:00") - new Date(a + "T00:00:00")) / 86400000);
  }

  function shortDate(iso) { return iso ? iso.slice(5, 10).replace("-", "月") + "日" : ""; }

  function timeText(iso) { return iso ? iso.slice(5, 16).replace("T", " ") : ""; }

  // A moment (ms or an ISO time with its offset) on the phone's clock: 11-29 09:12.
  function localTime(when) {
    var d = new Date(when);
    return pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function levelInfo(level) {
    var levels = (state.copy && state.copy.levels) || (state.today && state.today.levels) || [];
    for (var i = 0; i < levels.length; i++) { if (levels[i].value === level) { return levels[i]; } }
    return null;
  }

  function levelBadge(level) {
    var info = levelInfo(level);
    if (!info) { return el("span", {cls: "badge badge-none", text: "未评估"}); }
    return el("span", {cls: "badge level", style: "background:" + info.colour, text: info.label});
  }

  function query(name) {
    var m = new RegExp("[?&]" + name + "=([^&]*)").exec(location.search);
    return m ? decodeURIComponent(m[1]) : null;
  }

  // ---------------------------------------------------------------- the bar

  function bar() {
    var node = $("sync-bar");
    if (!node) {
      node = el("div", {id: "sync-bar", cls: "sync-bar", role: "status", hidden: true});
      if (page === "desk") { document.body.insertBefore(node, document.body.firstChild); }
      else { document.body.insertBefore(node, $("main")); }
    }
    return node;
  }

  function updateBar() {
    var userId = state.user ? state.user.id : null;
    return F.counts(userId).then(function (c) {
      state.counts = c;
      var node = bar();
      node.innerHTML = "";
      node.className = "sync-bar";
      node.setAttribute("data-pending", c.pending);
      node.setAttribute("data-refused", c.refused);
      node.setAttribute("data-online", state.online ? "1" : "0");
      var parts = [];
      if (!state.online) {
        node.classList.add("offline");
        parts.push(el("b", {text: "离线"}), " · " + c.pending + " 条待同步");
      } else if (state.session && state.session.state === "login" && (c.pending || c.refused)) {
        node.classList.add("login");
        parts.push(loginPrompt(c));
      } else if (state.syncing) {
        parts.push("正在同步 " + c.pending + " 条…");
      } else if (c.pending) {
        parts.push(c.pending + " 条待同步 ", el("button", {cls: "btn-link", id: "sync-now", type: "button", text: "立即同步", on: {click: function () { trySync(true); }}}));
      } else if (state.synced) {
        node.classList.add("ok");
        parts.push("已同步 " + state.synced + " 条");
      }
      if (c.refused) {
        parts.push(el("a", {cls: "refused-link", href: "/field/#queue", text: " · 需处理 " + c.refused + " 条"}));
      }
      if (c.others) {
        parts.push(el("span", {cls: "others", text: " · 另有 " + c.others + " 条由其他账号录入，需用该账号登录后同步"}));
      }
      if (state.result && state.result.error && state.online) {
        parts.push(el("span", {cls: "error", text: " · " + state.result.error}));
      }
      parts.forEach(function (p) { node.appendChild(typeof p === "string" ? document.createTextNode(p) : p); });
      node.hidden = !parts.length;
      if (page === "today") { renderQueue(); }
    });
  }

  // A session that ended while offline: the owner's password again, before anything is sent.
  function loginPrompt(c) {
    var owner = state.copy && state.copy.user;
    var box = el("form", {cls: "relogin", id: "relogin"}, [
      el("span", {text: "登录已过期，" + (c.pending + c.refused) + " 条记录待同步。请输入 " + (owner ? owner.username : "") + " 的密码："}),
      el("input", {type: "password", id: "relogin-password", autocomplete: "current-password", "aria-label": "密码"}),
      el("button", {type: "submit", cls: "btn", text: "登录并同步"}),
      el("span", {id: "relogin-error", cls: "error"})
    ]);
    box.addEventListener("submit", function (ev) {
      ev.preventDefault();
      relogin(owner, $("relogin-password").value);
    });
    return box;
  }

  function relogin(owner, password) {
    if (!owner) { location.href = "/login?next=/field/"; return; }
    fetch("/field/api/login", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": state.session.csrf},
      body: JSON.stringify({username: owner.username, user_id: owner.id, password: password})
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { $("relogin-error").textContent = body.error || "登录失败"; return; }
        state.session = {state: "ok", user: body.user, csrf: body.csrf_token};
        state.user = body.user;
        trySync(true);
      });
    }, function () { $("relogin-error").textContent = "网络不通，请稍后再试"; });
  }

  // ---------------------------------------------------------------- sync

  function trySync(manual) {
    state.online = navigator.onLine;
    if (!state.online || state.syncing) { return updateBar(); }
    state.syncing = true;
    updateBar();
    return F.syncNow().then(function (result) {
      state.syncing = false;
      noteResult(result);
      if (result.state === "login") { state.session = {state: "login", csrf: state.session && state.session.csrf}; }
      if (result.state === "offline") { state.online = false; }
      if (result.state === "done" && result.synced) {
        return F.getCopy().then(function (copy) { state.copy = copy || state.copy; });
      }
      return null;
    }, function () {
      state.syncing = false;
    }).then(function () {
      if (manual && state.result && state.result.state === "login" && !state.session) { state.session = {state: "login"}; }
      updateBar();
      if (page === "today" && state.result && state.result.synced) { renderToday(); }
    });
  }

  function registerWorker() {
    if (!("serviceWorker" in navigator)) { return Promise.resolve(null); }
    return navigator.serviceWorker.register("/field/sw.js", {scope: "/field/"}).catch(function () { return null; });
  }

  function askBackgroundSync() {
    if (!("serviceWorker" in navigator)) { return; }
    navigator.serviceWorker.ready.then(function (reg) {
      if (reg.sync && reg.sync.register) { reg.sync.register("tonghu-field-sync").catch(function () {}); }
    });
  }

  // ---------------------------------------------------------------- start

  function boot() {
    bindLogout();
    window.addEventListener("online", function () { state.online = true; trySync(false); });
    window.addEventListener("offline", function () { state.online = false; updateBar(); });
    if (navigator.serviceWorker) {
      navigator.serviceWorker.addEventListener("message", function (ev) {
        if (ev.data && ev.data.type === "synced") {
          noteResult(ev.data.result);
          updateBar();
          if (page === "today" && ev.data.result && ev.data.result.synced) { renderToday(); }
        }
      });
    }
    registerWorker();
    if (navigator.storage && navigator.storage.persist && page !== "desk") {
      navigator.storage.persist().catch(function () {});  // ask the browser not to evict the queue
    }
    return F.probe().then(function (session) {
      state.session = session;
      state.online = session.state !== "offline" && navigator.onLine;
      if (session.state === "ok") {
        state.user = session.user;
        return F.adoptUser(session.user).then(function (adopted) {
          if (adopted.changed) { return resetCaches().then(function () { return null; }); }
          return adopted.copy;
        }).then(function (copy) {
          state.copy = copy;
          if (F.copyIsFresh(copy, session.user.id)) { return null; }
          var refresh = F.refreshCopy().then(function (fresh) { state.copy = fresh; }, function () {});
          return copy && page !== "roll" ? null : refresh;  // the page waits only when it has nothing
        });
      }
      return F.getCopy().then(function (copy) { state.copy = copy; state.user = copy ? copy.user : null; });
    }).then(function () {
      if (page === "today") { renderToday(); }
      if (page === "visit") { startVisitForm(); }
      if (page === "roll") { startRoll(); }
      return updateBar();
    }).then(function () {
      if (state.online && state.counts && state.counts.pending) { trySync(false); }
    });
  }

  // The account changed on this phone: the caches go too, and the worker starts afresh.
  function resetCaches() {
    var jobs = [];
    if (window.caches) {
      jobs.push(caches.keys().then(function (keys) { return Promise.all(keys.map(function (k) { return caches.delete(k); })); }));
    }
    if (navigator.serviceWorker) {
      jobs.push(navigator.serviceWorker.getRegistrations().then(function (regs) {
        return Promise.all(regs.map(function (r) { return r.unregister(); }));
      }).then(registerWorker));
    }
    return Promise.all(jobs);
  }

  // Logging out leaves nothing of the offline copy or the queue on the phone.
  function bindLogout() {
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.action || !/\/logout$/.test(form.action) || form.getAttribute("data-wiped")) { return; }
      ev.preventDefault();
      F.counts(state.user ? state.user.id : null).then(function (c) {
        var waiting = c.pending + c.refused;
        if (waiting && !window.confirm("还有 " + waiting + " 条记录没有同步到服务器，退出登录会把它们从手机上删除。确定退出吗？")) {
          return;
        }
        F.wipe().then(function () {
          var token = form.querySelector("input[name=csrf_token]");
          if (token && !token.value && state.session && state.session.csrf) { token.value = state.session.csrf; }
          if (!navigator.onLine) {
            document.body.innerHTML = "";
            document.body.appendChild(el("p", {cls: "empty", text: "已清除手机上的离线数据。现在没有网络，联网后请重新登录。"}));
            return;
          }
          form.setAttribute("data-wiped", "1");
          form.submit();
        });
      });
    }, true);
  }

  // ---------------------------------------------------------------- 今日

  function renderToday() {
    var main = $("today");
    if (!main) { return; }
    var user = state.user;
    $("who").textContent = user ? (user.name + "（" + user.role + (user.village ? " · " + user.village : "") + "）") : "";
    $("today-date").textContent = localDate();
    var online = state.session && state.session.state === "ok" && state.online;
    var source = online
      ? fetch("/field/api/today", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.json();
      }).then(function (data) { data.source = "server"; return data; }).catch(offlineToday)
      : Promise.resolve(offlineToday());
    return source.then(function (data) {
      state.today = data;
      main.innerHTML = "";
      main.setAttribute("data-source", data.source);
      if (data.source === "copy" && !state.copy) {
        main.appendChild(el("p", {cls: "empty", id: "no-copy", text: "手机上还没有离线数据（或已超过7天未同步而清除）。请联网打开一次今日，系统会保存本村的离线数据。"}));
        return;
      }
      if (data.source === "copy") {
        main.appendChild(el("p", {cls: "note", id: "offline-note", text: "离线：以下按 " + localTime(state.copy.synced_at) + " 同步的离线数据显示；预警与赋能服务联网后显示。"}));
      }
      main.appendChild(summary(data));
      main.appendChild(section("visits-overdue", "走访逾期", data.visits_overdue, childRow, "没有逾期未走访的儿童"));
      main.appendChild(section("visits-due", "本周应走访", data.visits_due, childRow, "本周没有到期的走访"));
      main.appendChild(section("alerts", "指派给我的预警", data.alerts, alertRow, "没有指派给您的未办结预警"));
      main.appendChild(section("measures", "应落实的分层赋能措施", data.measures, measureRow, "本周没有到期的赋能措施"));
      main.appendChild(section("never-assessed", "尚未评估的儿童", data.never_assessed, childRow, "所有儿童都已评估"));
      main.appendChild(activitySection("activities-today", "今天的活动", data.activities_today));
      main.appendChild(activitySection("activities-week", "本周活动", data.activities_week));
      renderQueue();
    });
  }

  function offlineToday() {
    var today = localDate();
    var children = F.childrenOf(state.copy);
    var villages = {};
    ((state.copy && state.copy.villages) || []).forEach(function (v) { villages[v[0]] = v[1]; });
    var rank = {red: 0, orange: 1, yellow: 2, green: 3};
    function row(c) {
      var due = c.next_visit_due;
      return {id: c.id, name: c.name, village: villages[c.village_id] || "", level: c.level,
        next_visit_due: due, days_overdue: due && due < today ? daysBetween(due, today) : 0, last_visit: c.last_visit};
    }
    var overdue = children.filter(function (c) { return c.next_visit_due && c.next_visit_due < today; });
    overdue.sort(function (a, b) {
      var ra = a.level in rank ? rank[a.level] : 4, rb = b.level in rank ? rank[b.level] : 4;
      return ra - rb || (a.next_visit_due < b.next_visit_due ? -1 : a.next_visit_due > b.next_visit_due ? 1 : a.id - b.id);
    });
    var byLevel = {};
    overdue.forEach(function (c) { var k = c.level || "none"; byLevel[k] = (byLevel[k] || 0) + 1; });
    var end = addDays(today, 6);
    var due = children.filter(function (c) { return c.next_visit_due && c.next_visit_due >= today && c.next_visit_due <= end; });
    due.sort(function (a, b) { return a.next_visit_due < b.next_visit_due ? -1 : a.next_visit_due > b.next_visit_due ? 1 : 0; });
    var never = children.filter(function (c) { return !c.level; });
    var activities = ((state.copy && state.copy.activities) || []).map(function (a) {
      return {id: a.id, title: a.title, starts_at: a.starts_at, place: a.place,
        signed: a.roll.filter(function (e) { return e[8]; }).length, today: a.starts_at.slice(0, 10) === today};
    }).filter(function (a) { return a.starts_at.slice(0, 10) >= today && a.starts_at.slice(0, 10) <= end; });
    var limit = 30;
    return {
      source: "copy",
      today: today,
      visits_overdue: {count: overdue.length, rows: overdue.slice(0, limit).map(row), by_level: byLevel},
      visits_due: {count: due.length, rows: due.slice(0, limit).map(row)},
      never_assessed: {count: never.length, rows: never.slice(0, limit).map(row)},
      alerts: null,
      measures: null,
      activities_today: activities.filter(function (a) { return a.today; }),
      activities_week: activities.filter(function (a) { return !a.today; }),
      levels: state.copy ? state.copy.levels : []
    };
  }

  function summary(data) {
    var box = el("div", {cls: "summary", id: "summary"});
    function tile(id, label, value, hint) {
      box.appendChild(el("a", {cls: "tile", id: id, href: "#" + id.replace("tile-", "")}, [
        el("span", {cls: "tile-value", text: value === null ? "—" : String(value)}),
        el("span", {cls: "tile-label", text: label}),
        hint ? el("span", {cls: "tile-hint", text: hint}) : null
      ]));
    }
    var by = data.visits_overdue.by_level || {};
    var hint = ["red", "orange", "yellow", "green", "none"].filter(function (k) { return by[k]; }).map(function (k) {
      var info = levelInfo(k);
      return (info ? info.label : "未评估") + by[k];
    }).join(" ");
    tile("tile-visits-overdue", "走访逾期", data.visits_overdue.count, hint);
    tile("tile-visits-due", "本周应走访", data.visits_due.count);
    tile("tile-alerts", "我的预警", data.alerts ? data.alerts.count : null);
    tile("tile-measures", "赋能措施逾期", data.measures ? data.measures.overdue : null);
    tile("tile-never-assessed", "未评估", data.never_assessed.count);
    return box;
  }

  function section(id, title, block, rowFn, emptyText) {
    var box = el("section", {cls: "list", id: id});
    var count = block ? block.count : null;
    box.appendChild(el("h2", {}, [title + " ", el("span", {cls: "count", text: count === null ? "联网后显示" : String(count)})]));
    if (!block) { return box; }
    if (!block.rows.length) { box.appendChild(el("p", {cls: "empty", text: emptyText})); return box; }
    var list = el("ul", {cls: "rows"});
    block.rows.forEach(function (r) { list.appendChild(rowFn(r)); });
    box.appendChild(list);
    if (block.count > block.rows.length) {
      box.appendChild(el("p", {cls: "more", text: "另有 " + (block.count - block.rows.length) + " 条，请在电脑上查看全部"}));
    }
    return box;
  }

  function actionLink(text, href, cls) {
    return el("a", {cls: "act " + (cls || ""), href: href, text: text});
  }

  function childRow(c) {
    var facts = [];
    if (c.days_overdue) { facts.push(el("span", {cls: "late", text: "逾期 " + c.days_overdue + " 天"})); }
    else if (c.next_visit_due) { facts.push(el("span", {text: "应于 " + shortDate(c.next_visit_due) + " 走访"})); }
    facts.push(el("span", {cls: "muted", text: c.last_visit ? " · 上次走访 " + c.last_visit : " · 尚无走访记录"}));
    var actions = [];
    if (state.user && state.user.may_visit) { actions.push(actionLink("记走访", "/field/visit?child=" + c.id, "primary")); }
    return el("li", {cls: "row", "data-child": c.id}, [
      el("div", {cls: "row-main"}, [
        el("div", {cls: "row-title"}, [el("b", {text: c.name}), " ", levelBadge(c.level), el("span", {cls: "village", text: " " + c.village})]),
        el("div", {cls: "row-facts"}, facts)
      ]),
      el("div", {cls: "row-actions"}, actions)
    ]);
  }

  function alertRow(a) {
    var colours = {red: "#d62728", orange: "#f07c00", yellow: "#e6b800"};
    var labels = {red: "红", orange: "橙", yellow: "黄"};
    return el("li", {cls: "row" + (a.overdue ? " overdue" : ""), "data-alert": a.id}, [
      el("div", {cls: "row-main"}, [
        el("div", {cls: "row-title"}, [el("span", {cls: "badge level", style: "background:" + colours[a.severity], text: labels[a.severity]}), " ", el("b", {text: a.child || a.title}), el("span", {cls: "village", text: " " + a.village})]),
        el("div", {cls: "row-facts"}, [a.title + " · 期限 " + timeText(a.deadline), a.overdue ? el("span", {cls: "late", text: " 已逾期"}) : null, " · " + a.status])
      ]),
      el("div", {cls: "row-actions"}, [actionLink("处置", "/admin/alerts/" + a.id + "/", "primary")])
    ]);
  }

  function measureRow(m) {
    var actions = [];
    if (state.user && state.user.may_services) { actions.push(actionLink("落实", "/admin/support_service/edit/?id=" + m.id, "primary")); }
    return el("li", {cls: "row", "data-measure": m.id}, [
      el("div", {cls: "row-main"}, [
        el("div", {cls: "row-title"}, [el("b", {text: m.child}), " ", levelBadge(m.level), el("span", {cls: "village", text: " " + m.village})]),
        el("div", {cls: "row-facts"}, [m.kind + " · 应于 " + shortDate(m.due_on) + " 前落实", m.days_overdue ? el("span", {cls: "late", text: " 逾期 " + m.days_overdue + " 天"}) : null])
      ]),
      el("div", {cls: "row-actions"}, actions)
    ]);
  }

  function activitySection(id, title, rows) {
    var box = el("section", {cls: "list", id: id});
    box.appendChild(el("h2", {}, [title + " ", el("span", {cls: "count", text: String(rows.length)})]));
    if (!rows.length) { box.appendChild(el("p", {cls: "empty", text: "没有活动"})); return box; }
    var list = el("ul", {cls: "rows"});
    rows.forEach(function (a) {
      var actions = [];
      if (state.user && state.user.may_sign) { actions.push(actionLink("签到", "/field/roll?id=" + a.id, "primary")); }
      list.appendChild(el("li", {cls: "row", "data-activity": a.id}, [
        el("div", {cls: "row-main"}, [
          el("div", {cls: "row-title"}, [el("b", {text: a.title})]),
          el("div", {cls: "row-facts"}, [timeText(a.starts_at) + (a.place ? " · " + a.place : "") + " · 已签到 " + a.signed + " 人"])
        ]),
        el("div", {cls: "row-actions"}, actions)
      ]));
    });
    box.appendChild(list);
    return box;
  }

  // What waits on this phone: pending items, and refused ones with their reason (需处理).
  function renderQueue() {
    var box = $("queue");
    if (!box) { return; }
    var userId = state.user ? state.user.id : null;
    F.queueItems().then(function (items) {
      var mine = items.filter(function (i) { return i.user_id === userId; });
      box.innerHTML = "";
      box.hidden = !mine.length;
      if (!mine.length) { return; }
      var refused = mine.filter(function (i) { return i.status === "refused"; });
      var pending = mine.filter(function (i) { return i.status !== "refused"; });
      if (refused.length) {
        box.appendChild(el("h2", {}, ["需处理 ", el("span", {cls: "count", text: String(refused.length)})]));
        var list = el("ul", {cls: "rows", id: "refused"});
        refused.forEach(function (item) { list.appendChild(queueRow(item, true)); });
        box.appendChild(list);
      }
      if (pending.length) {
        box.appendChild(el("h2", {}, ["待同步 ", el("span", {cls: "count", text: String(pending.length)})]));
        var plist = el("ul", {cls: "rows", id: "pending"});
        pending.forEach(function (item) { plist.appendChild(queueRow(item, false)); });
        box.appendChild(plist);
      }
    });
  }

  function queueRow(item, refused) {
    var what = item.kind === "visit"
      ? "走访 " + (item.data.child_name || "") + (item.data.answers && item.data.answers.risk_found ? "（发现风险）" : "")
      : "签到 " + (item.data.activity_title || "") + "：" + (item.data.present || []).length + " 人";
    var actions = [];
    if (refused) {
      var fix = item.kind === "visit" ? "/field/visit?fix=" + item.uuid : "/field/roll?id=" + item.data.activity_id + "&fix=" + item.uuid;
      actions.push(actionLink("修改", fix, "primary"));
      actions.push(el("button", {type: "button", cls: "act danger", text: "删除", on: {click: function () {
        if (window.confirm("删除这条未同步的记录？删除后无法恢复。")) { F.discard(item.uuid).then(updateBar); }
      }}}));
    }
    return el("li", {cls: "row" + (refused ? " refused" : ""), "data-uuid": item.uuid}, [
      el("div", {cls: "row-main"}, [
        el("div", {cls: "row-title"}, [el("b", {text: what})]),
        el("div", {cls: "row-facts"}, ["记录于 " + localTime(item.recorded_at)]),
        refused ? el("div", {cls: "reason", text: item.reason}) : null
      ]),
      el("div", {cls: "row-actions"}, actions)
    ]);
  }

  // ---------------------------------------------------------------- the visit form

  var visit = {child: null, photos: [], fixing: null};

  function startVisitForm() {
    var form = $("visit-form");
    if (!state.user && !state.copy) {
      $("visit-main").innerHTML = "";
      $("visit-main").appendChild(el("p", {cls: "empty", text: "手机上还没有离线数据，请联网登录后再记录走访。"}));
      return;
    }
    if (state.user && !state.user.may_visit) {
      form.hidden = true;
      $("visit-main").appendChild(el("p", {cls: "empty", text: "您的角色不能录入巡查走访。"}));
      return;
    }
    buildChoices();
    $("visited_on").value = localDate();
    $("visited_on").max = localDate();
    $("child-search").addEventListener("input", debounce(findChild, 200));
    $("child-change").addEventListener("click", function () { pickChild(null); });
    $("photo-input").addEventListener("change", addPhotos);
    form.addEventListener("change", applyRules);
    form.addEventListener("submit", submitVisit);
    $("again").addEventListener("click", function () { resetVisitForm(); });
    var fix = query("fix");
    if (fix) { return F.getItem(fix).then(loadItem); }
    var childId = query("child");
    if (childId) { return childById(parseInt(childId, 10)).then(pickChild); }
    return null;
  }

  function buildChoices() {
    var kinds = (state.copy && state.copy.kinds) || [["patrol", "日常巡查"], ["home", "入户走访"], ["phone", "电话回访"], ["school", "学校走访"]];
    var kindBox = $("kind-choices");
    kindBox.innerHTML = "";
    kinds.forEach(function (k) {
      kindBox.appendChild(el("label", {cls: "choice"}, [el("input", {type: "radio", name: "kind", value: k[0], id: "kind-" + k[0]}), el("span", {text: k[1]})]));
    });
    var answers = (state.copy && state.copy.answers) || [
      ["child_seen", "见到儿童本人"], ["guardian_present", "监护人在场"], ["living_ok", "居住生活条件正常"],
      ["school_ok", "正常上学"], ["harm_signs", "发现伤害迹象"], ["risk_found", "发现风险"]];
    var box = $("answers");
    box.innerHTML = "";
    answers.forEach(function (a) {
      box.appendChild(el("fieldset", {cls: "yesno", id: "q-" + a[0]}, [
        el("legend", {text: a[1]}),
        el("label", {cls: "choice yes"}, [el("input", {type: "radio", name: a[0], value: "1", id: a[0] + "-yes"}), el("span", {text: "是"})]),
        el("label", {cls: "choice no"}, [el("input", {type: "radio", name: a[0], value: "0", id: a[0] + "-no"}), el("span", {text: "否"})]),
        el("div", {cls: "field-error", id: "error-" + a[0]})
      ]));
    });
    var staffBox = $("visitor-choices");
    staffBox.innerHTML = "";
    var me = state.user && state.user.staff_id;
    var mine = null;
    ((state.copy && state.copy.staff) || []).forEach(function (s) {
      var chip = el("label", {cls: "chip"}, [
        el("input", {type: "checkbox", name: "visitors", value: String(s[0]), checked: s[0] === me}),
        el("span", {text: s[1] + (s[2] ? "（" + s[2] + "）" : "")})
      ]);
      if (s[0] === me) { mine = s; }
      staffBox.appendChild(chip);
    });
    $("visitors-me").textContent = mine ? "我：" + mine[1] + "（可添加同行人员）" : "";
    $("visitors-group").hidden = !staffBox.children.length;
  }

  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  function childById(id) {
    var local = F.childrenOf(state.copy).filter(function (c) { return c.id === id; })[0];
    if (local) { return Promise.resolve(decorate(local)); }
    if (!state.online) { return Promise.resolve(null); }
    return fetch("/field/api/children?id=" + id, {credentials: "same-origin"}).then(function (r) { return r.json(); })
      .then(function (body) { return (body.children || [])[0] || null; }, function () { return null; });
  }

  function decorate(c) {
    var villages = {};
    ((state.copy && state.copy.villages) || []).forEach(function (v) { villages[v[0]] = v[1]; });
    return {id: c.id, name: c.name, village: villages[c.village_id] || "", level: c.level,
      last_visit: c.last_visit, next_visit_due: c.next_visit_due, guardian: c.guardian, guardian_phone: c.guardian_phone};
  }

  function findChild() {
    var term = $("child-search").value.trim();
    var list = $("child-results");
    list.innerHTML = "";
    if (!term) { return; }
    var online = state.online && state.session && state.session.state === "ok";
    var search = online
      ? fetch("/field/api/children?q=" + encodeURIComponent(term), {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (body) { return body.children; })
      : Promise.reject(new Error("offline"));
    search.catch(function () {
      return F.search(F.childrenOf(state.copy), term).slice(0, 20).map(decorate);
    }).then(function (found) {
      if ($("child-search").value.trim() !== term) { return; }
      list.innerHTML = "";
      if (!found.length) { list.appendChild(el("li", {cls: "empty", text: "没有找到：请换姓名、拼音首字母或身份证后4位"})); return; }
      found.forEach(function (c) {
        list.appendChild(el("li", {}, [el("button", {type: "button", cls: "pick", "data-child": c.id, on: {click: function () { pickChild(c); }}}, childSummary(c))]));
      });
    });
  }

  function childSummary(c) {
    return [
      el("b", {text: c.name}), " ", levelBadge(c.level), el("span", {cls: "village", text: " " + (c.village || "")}),
      el("span", {cls: "last-visit", text: c.last_visit ? "上次走访 " + c.last_visit : "尚无走访记录"})
    ];
  }

  function pickChild(c) {
    visit.child = c;
    $("child-picked").innerHTML = "";
    $("child-picker").hidden = !!c;
    $("child-picked-box").hidden = !c;
    if (c) {
      childSummary(c).forEach(function (n) { $("child-picked").appendChild(typeof n === "string" ? document.createTextNode(n) : n); });
      if (c.guardian) {
        $("child-picked").appendChild(el("span", {cls: "guardian", text: "监护人 " + c.guardian + (c.guardian_phone ? " " + c.guardian_phone : "")}));
      }
      $("error-child").textContent = "";
    } else {
      $("child-search").value = "";
      $("child-results").innerHTML = "";
      $("child-search").focus();
    }
  }

  function radioValue(name) {
    var checked = document.querySelector("input[name='" + name + "']:checked");
    return checked ? checked.value : null;
  }

  function setRadio(name, value) {
    var input = document.querySelector("input[name='" + name + "'][value='" + value + "']");
    if (input) { input.checked = true; }
  }

  // 未见到儿童本人 or 发现伤害迹象 = 是: 发现风险 is 是 (and cannot be 否), and its reason is asked.
  function applyRules() {
    var forced = radioValue("child_seen") === "0" || radioValue("harm_signs") === "1";
    var no = $("risk_found-no");
    if (forced) { setRadio("risk_found", "1"); }
    if (no) { no.disabled = forced; }
    $("risk-forced").hidden = !forced;
    $("risk-note-group").hidden = radioValue("risk_found") !== "1";
  }

  function resizePhoto(file) {
    return new Promise(function (resolve, reject) {
      var reader = new FileReader();
      reader.onerror = function () { reject(new Error("read")); };
      reader.onload = function () {
        var img = new Image();
        img.onerror = function () { reject(new Error("decode")); };
        img.onload = function () {
          var max = 1600, w = img.naturalWidth, h = img.naturalHeight;
          var scale = Math.min(1, max / Math.max(w, h));
          var canvas = document.createElement("canvas");
          canvas.width = Math.round(w * scale);
          canvas.height = Math.round(h * scale);
          canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
          var thumb = document.createElement("canvas");
          var ts = Math.min(1, 160 / Math.max(w, h));
          thumb.width = Math.round(w * ts); thumb.height = Math.round(h * ts);
          thumb.getContext("2d").drawImage(img, 0, 0, thumb.width, thumb.height);
          canvas.toBlob(function (blob) {
            if (!blob) { reject(new Error("encode")); return; }
            var r2 = new FileReader();
            r2.onload = function () {
              resolve({name: (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg", type: "image/jpeg", data: r2.result, thumb: thumb.toDataURL("image/jpeg", 0.7)});
            };
            r2.onerror = function () { reject(new Error("read")); };
            r2.readAsArrayBuffer(blob);
          }, "image/jpeg", 0.82);
        };
        img.src = reader.result;
      };
      reader.readAsDataURL(file);
    });
  }

  function addPhotos(ev) {
    var files = Array.prototype.slice.call(ev.target.files || []);
    ev.target.value = "";
    $("error-photos").textContent = "";
    files.reduce(function (chain, file) {
      return chain.then(function () {
        if (visit.photos.length >= 6) { $("error-photos").textContent = "每次走访最多附6张照片"; return null; }
        return resizePhoto(file).then(function (p) { visit.photos.push(p); drawPhotos(); },
          function () { $("error-photos").textContent = "有照片无法读取，请重新拍摄"; });
      });
    }, Promise.resolve());
  }

  function drawPhotos() {
    var box = $("photo-list");
    box.innerHTML = "";
    visit.photos.forEach(function (p, i) {
      box.appendChild(el("div", {cls: "photo"}, [
        el("img", {src: p.thumb, alt: "照片 " + (i + 1)}),
        el("button", {type: "button", cls: "remove", "aria-label": "删除照片", text: "×", on: {click: function () { visit.photos.splice(i, 1); drawPhotos(); }}})
      ]));
    });
    $("photo-count").textContent = visit.photos.length ? "已附 " + visit.photos.length + " 张" : "";
  }

  function collect() {
    var answers = {};
    Array.prototype.forEach.call(document.querySelectorAll("#answers fieldset"), function (fs) {
      var name = fs.id.slice(2);
      var v = radioValue(name);
      answers[name] = v === null ? null : v === "1";
    });
    var visitors = Array.prototype.map.call(document.querySelectorAll("input[name=visitors]:checked"), function (i) { return parseInt(i.value, 10); });
    return {
      child_id: visit.child ? visit.child.id : null,
      child_name: visit.child ? visit.child.name : "",
      visited_on: $("visited_on").value,
      kind: radioValue("kind"),
      answers: answers,
      risk_note: $("risk_note").value.trim(),
      notes: $("notes").value.trim(),
      visitors: visitors
    };
  }

  // The same checks as services/visits.check_entry, so a refused save is told at once, offline too.
  function check(data) {
    var errors = {};
    if (!data.child_id) { errors.child = "请选择走访的儿童"; }
    if (!data.visited_on) { errors.visited_on = "请填写走访日期"; }
    else if (data.visited_on > localDate()) { errors.visited_on = "走访日期不能晚于今天"; }
    if (!data.kind) { errors.kind = "请选择走访方式"; }
    Object.keys(data.answers).forEach(function (name) {
      if (data.answers[name] === null) {
        errors[name] = "请选择“" + document.querySelector("#q-" + name + " legend").textContent + "”：是 或 否";
      }
    });
    if ((data.answers.child_seen === false || data.answers.harm_signs === true) && data.answers.risk_found === false) {
      errors.risk_found = "未见到儿童本人或发现伤害迹象时，必须标记“发现风险”";
    }
    if (data.answers.risk_found && !data.risk_note) { errors.risk_note = "发现风险时请说明风险情况（看到了什么、儿童现在何处、已采取什么措施）"; }
    return errors;
  }

  function showErrors(errors) {
    Array.prototype.forEach.call(document.querySelectorAll(".field-error"), function (n) { n.textContent = ""; });
    Array.prototype.forEach.call(document.querySelectorAll(".has-error"), function (n) { n.classList.remove("has-error"); });
    var names = Object.keys(errors);
    var summaryBox = $("form-errors");
    summaryBox.innerHTML = "";
    summaryBox.hidden = !names.length;
    if (!names.length) { return; }
    summaryBox.appendChild(el("b", {text: "还不能保存："}));
    var list = el("ul");
    names.forEach(function (name) {
      list.appendChild(el("li", {text: errors[name]}));
      var slot = $("error-" + name);
      if (slot) {
        slot.textContent = errors[name];
        var group = slot.closest("fieldset, .group");
        if (group) { group.classList.add("has-error"); }
      }
    });
    summaryBox.appendChild(list);
    var first = $("error-" + names[0]);
    (first && first.closest("fieldset, .group") || summaryBox).scrollIntoView({block: "center"});
  }

  function submitVisit(ev) {
    ev.preventDefault();
    var data = collect();
    var errors = check(data);
    showErrors(errors);
    if (Object.keys(errors).length) { return; }
    var owner = state.user || (state.copy && state.copy.user);
    if (!owner) { showErrors({child: "请先联网登录"}); return; }
    var item = {
      uuid: visit.fixing || F.uuid4(), kind: "visit", user_id: owner.id, username: owner.username,
      recorded_at: visit.recordedAt || new Date().toISOString(), offline: !navigator.onLine, data: data,
      photos: visit.photos.map(function (p) { return {name: p.name, type: p.type, data: p.data}; })
    };
    $("save").disabled = true;
    F.enqueue(item).then(function () {
      return movedInCopy(data);
    }).then(function () {
      if (!navigator.onLine) { askBackgroundSync(); return {state: "offline"}; }
      return F.syncNow({only: item.uuid});
    }).then(function (result) {
      $("save").disabled = false;
      var mine = (result.results || []).filter(function (r) { return r.uuid === item.uuid; })[0];
      if (mine && !mine.ok) {
        // Refused while the visitor is still here: back to the form, with the reasons.
        return F.discard(item.uuid).then(function () {
          visit.fixing = item.uuid;
          visit.recordedAt = item.recorded_at;
          showErrors(mine.errors && Object.keys(mine.errors).length ? mine.errors : {child: mine.message});
        });
      }
      noteResult(result);
      showSaved(mine, result);
      return updateBar();
    }, function () { $("save").disabled = false; showSaved(null, {state: "offline"}); return updateBar(); });
  }

  // The phone's copy shows the visit at once: the child's last visit and 下次走访 move, so 今日 offline no
  // longer lists the child as due. The server counts 下次走访 from the latest of registration, last
  // visit and approved assessment plus the child's interval, so after this visit it is
  // max(stored date, visit date + interval): the same rule here, with the interval the copy carries per
  // child (services/visits.visit_days_of); the next sync brings the server's date anyway.
  function movedInCopy(data) {
    return F.getCopy().then(function (copy) {
      if (!copy) { return null; }
      var f = copy.child_fields, id = f.indexOf("id"), level = f.indexOf("level");
      var due = f.indexOf("next_visit_due"), last = f.indexOf("last_visit"), own = f.indexOf("visit_days");
      var row = copy.children.filter(function (r) { return r[id] === data.child_id; })[0];
      if (!row) { return null; }
      var days = own >= 0 ? row[own] : null;
      if (!days) {  // a copy made before the interval was carried per child
        var info = (copy.levels || []).filter(function (l) { return l.value === row[level]; })[0];
        days = info && info.visit_days ? info.visit_days : (copy.unassessed_visit_days || 30);
      }
      if (!row[last] || data.visited_on > row[last]) { row[last] = data.visited_on; }
      var moved = addDays(data.visited_on, days);
      if (!row[due] || moved > row[due]) { row[due] = moved; }
      state.copy = copy;
      return F.saveCopy(copy);
    });
  }

  function showSaved(mine, result) {
    $("visit-form").hidden = true;
    var saved = $("saved");
    saved.hidden = false;
    var text = $("saved-detail");
    if (mine && mine.ok) {
      text.textContent = "已同步到服务器" + (mine.alert_id ? "，已生成风险预警，请跟进处置。" : "。");
    } else if (result.state === "login") {
      text.textContent = "已保存在手机上。登录已过期，请在今日页面输入密码后同步。";
    } else {
      text.textContent = "已保存在手机上，联网后会自动同步（也可在今日页面点“立即同步”）。";
    }
    saved.setAttribute("data-synced", mine && mine.ok ? "1" : "0");
    window.scrollTo(0, 0);
  }

  function resetVisitForm() {
    visit = {child: null, photos: [], fixing: null};
    $("visit-form").reset();
    $("visit-form").hidden = false;
    $("saved").hidden = true;
    $("visited_on").value = localDate();
    pickChild(null);
    drawPhotos();
    applyRules();
    showErrors({});
    history.replaceState(null, "", "/field/visit");
  }

  function loadItem(item) {
    if (!item || item.kind !== "visit") { return; }
    visit.fixing = item.uuid;
    visit.recordedAt = item.recorded_at;
    var d = item.data;
    $("visited_on").value = d.visited_on || localDate();
    if (d.kind) { setRadio("kind", d.kind); }
    Object.keys(d.answers || {}).forEach(function (name) {
      if (d.answers[name] !== null) { setRadio(name, d.answers[name] ? "1" : "0"); }
    });
    $("risk_note").value = d.risk_note || "";
    $("notes").value = d.notes || "";
    visit.photos = (item.photos || []).map(function (p) { return {name: p.name, type: p.type, data: p.data, thumb: ""}; });
    drawPhotos();
    applyRules();
    showErrors(item.errors && Object.keys(item.errors).length ? item.errors : (item.reason ? {child: item.reason} : {}));
    return childById(d.child_id).then(function (c) { pickChild(c || {id: d.child_id, name: d.child_name, village: ""}); });
  }

  // ---------------------------------------------------------------- the attendance roll

  var roll = {activity: null, ticked: {}, was: {}};

  function startRoll() {
    var id = parseInt(query("id"), 10);
    var main = $("roll-main");
    var activity = ((state.copy && state.copy.activities) || []).filter(function (a) { return a.id === id; })[0];
    if (!activity) {
      main.innerHTML = "";
      main.appendChild(el("p", {cls: "empty", id: "no-roll", text: "手机上没有这个活动的签到名单（离线数据只含今后14天的活动）。"}));
      if (state.online) { main.appendChild(el("p", {}, [actionLink("在电脑版签到页面签到", "/admin/activity/attendance/?id=" + id)])); }
      return;
    }
    if (state.user && !state.user.may_sign) {
      main.innerHTML = "";
      main.appendChild(el("p", {cls: "empty", text: "您的角色不能为活动签到。"}));
      return;
    }
    roll.activity = activity;
    roll.ticked = {};
    roll.was = {};
    activity.roll.forEach(function (e) { if (e[8]) { roll.ticked[e[0]] = true; roll.was[e[0]] = true; } });
    $("roll-title").textContent = activity.title;
    $("roll-when").textContent = timeText(activity.starts_at) + (activity.place ? " · " + activity.place : "");
    if (activity.too_long) {
      main.insertBefore(el("p", {cls: "note", text: "名单过长，手机上只保存了本村的人员；其他人请联网后在电脑版签到。"}), main.firstChild);
    }
    $("roll-search").addEventListener("input", drawRoll);
    $("roll-save").addEventListener("click", saveRoll);
    $("roll-again").addEventListener("click", function () { $("roll-saved").hidden = true; $("roll-form").hidden = false; });
    var fix = query("fix");
    var ready = fix ? F.getItem(fix).then(function (item) {
      if (!item || item.kind !== "attendance") { return; }
      roll.fixing = item.uuid;
      (item.data.present || []).forEach(function (k) { roll.ticked[k] = true; });
      (item.data.absent || []).forEach(function (k) { delete roll.ticked[k]; });
      $("roll-errors").hidden = false;
      $("roll-errors").textContent = item.reason || "";
    }) : Promise.resolve();
    return ready.then(drawRoll);
  }

  function rollMatches(e, term) {
    if (!term) { return true; }
    if (/^\d{3}[\dXx]$/.test(term)) { return (e[7] || "").toUpperCase() === term.toUpperCase(); }
    if (/^[A-Za-z]+$/.test(term)) { term = term.toLowerCase(); return (e[6] || "").indexOf(term) === 0 || (e[5] || "").indexOf(term) === 0; }
    return e[1].indexOf(term) >= 0;
  }

  function drawRoll() {
    var term = $("roll-search").value.replace(/\s+/g, "");
    var list = $("roll-list");
    list.innerHTML = "";
    var shown = 0;
    roll.activity.roll.forEach(function (e) {
      if (!rollMatches(e, term) || shown >= 300) { return; }
      shown += 1;
      var box = el("input", {type: "checkbox", value: e[0], id: "tick-" + e[0].replace(":", "-"), checked: !!roll.ticked[e[0]]});
      box.addEventListener("change", function () {
        if (box.checked) { roll.ticked[e[0]] = true; } else { delete roll.ticked[e[0]]; }
        countRoll();
      });
      list.appendChild(el("li", {cls: "tick" + (roll.ticked[e[0]] ? " on" : "")}, [
        el("label", {"for": box.id}, [box, el("span", {cls: "who"}, [el("b", {text: e[1]}), el("span", {cls: "muted", text: " " + e[4] + " · " + e[3]})])])
      ]));
    });
    countRoll();
  }

  function changes() {
    var present = Object.keys(roll.ticked).filter(function (k) { return !roll.was[k]; });
    var absent = Object.keys(roll.was).filter(function (k) { return !roll.ticked[k]; });
    return {present: present, absent: absent};
  }

  function countRoll() {
    var c = changes();
    $("roll-count").textContent = "已签到 " + Object.keys(roll.ticked).length + " 人（本次新增 " + c.present.length + "，取消 " + c.absent.length + "）";
    $("roll-save").disabled = !(c.present.length || c.absent.length);
    Array.prototype.forEach.call(document.querySelectorAll("#roll-list li"), function (li) {
      var box = li.querySelector("input");
      li.classList.toggle("on", box.checked);
    });
  }

  function saveRoll() {
    var c = changes();
    var owner = state.user || (state.copy && state.copy.user);
    if (!owner || !(c.present.length || c.absent.length)) { return; }
    var item = {
      uuid: roll.fixing || F.uuid4(), kind: "attendance", user_id: owner.id, username: owner.username,
      recorded_at: new Date().toISOString(), offline: !navigator.onLine,
      data: {activity_id: roll.activity.id, activity_title: roll.activity.title, present: c.present, absent: c.absent}
    };
    $("roll-save").disabled = true;
    F.enqueue(item).then(function () {
      // The phone's roll shows the ticks as saved, synced or not.
      return F.getCopy().then(function (copy) {
        if (!copy) { return null; }
        copy.activities.forEach(function (a) {
          if (a.id !== roll.activity.id) { return; }
          a.roll.forEach(function (e) { e[8] = roll.ticked[e[0]] ? 1 : 0; });
        });
        state.copy = copy;
        roll.activity = copy.activities.filter(function (a) { return a.id === roll.activity.id; })[0] || roll.activity;
        return F.saveCopy(copy);
      });
    }).then(function () {
      roll.was = {};
      Object.keys(roll.ticked).forEach(function (k) { roll.was[k] = true; });
      roll.fixing = null;
      if (!navigator.onLine) { askBackgroundSync(); return {state: "offline"}; }
      return F.syncNow({only: item.uuid});
    }).then(function (result) {
      var mine = (result.results || []).filter(function (r) { return r.uuid === item.uuid; })[0];
      $("roll-form").hidden = true;
      $("roll-saved").hidden = false;
      $("roll-saved-detail").textContent = mine ? (mine.ok ? mine.message : "未能保存：" + mine.message + "（已留在今日页面的“需处理”中）") : "已保存在手机上，联网后会自动同步。";
      $("roll-saved").setAttribute("data-synced", mine && mine.ok ? "1" : "0");
      noteResult(result);
      return updateBar();
    });
  }

  window.TonghuFieldPages = {state: state, sync: trySync, updateBar: updateBar, askBackgroundSync: askBackgroundSync};
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", boot); } else { boot(); }
})();
