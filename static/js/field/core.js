// 童护 field core: the phone's offline copy and queue in IndexedDB (through idb), and the sync with
// the server. Runs in a page and in the service worker alike (no DOM here); pages.js draws the UI.
//
// IndexedDB "tonghu-field":
//   meta   "copy"  — the offline copy of the user's villages (services/field.py offline_copy), with
//                    synced_at: when it was last refreshed; it expires after 7 days without a sync.
//   queue  uuid    — what was recorded on the phone and not yet taken by the server: a visit (with
//                    its photos) or a set of attendance ticks, bound to the account (user_id) that
//                    recorded it. status "pending" or "refused" (with the server's reason).
(function (root) {
  "use strict";

  var DB_NAME = "tonghu-field";
  var DB_VERSION = 1;
  var COPY_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
  var COPY_REFRESH_MS = 10 * 60 * 1000;
  var BATCH_ITEMS = 200;
  var BATCH_PHOTO_BYTES = 8 * 1024 * 1024;
  var dbPromise = null;

  function db() {
    if (!dbPromise) {
      dbPromise = root.idb.openDB(DB_NAME, DB_VERSION, {
        upgrade: function (database) {
          database.createObjectStore("meta");
          var queue = database.createObjectStore("queue", {keyPath: "uuid"});
          queue.createIndex("by_user", "user_id");
        },
        blocking: function () { closeDb(); }
      });
    }
    return dbPromise;
  }

  function closeDb() {
    if (!dbPromise) { return Promise.resolve(); }
    var pending = dbPromise;
    dbPromise = null;
    return pending.then(function (database) { database.close(); }, function () {});
  }

  function uuid4() {
    if (root.crypto && root.crypto.randomUUID) { return root.crypto.randomUUID(); }
    var b = new Uint8Array(16);
    root.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // ---------------------------------------------------------------- the session

  // {state: "ok", user, csrf} | {state: "login", csrf} (the session ended) | {state: "offline"}
  function probe() {
    return fetch("/field/api/session", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      return r.json().then(function (body) {
        if (r.status === 200 && body.authenticated) { return {state: "ok", user: body.user, csrf: body.csrf_token}; }
        return {state: "login", csrf: body.csrf_token};
      }, function () {
        // Not our JSON (a login page, a proxy's error page): the session is not usable.
        return {state: r.ok || r.redirected ? "login" : "offline"};
      });
    }, function () { return {state: "offline"}; });
  }

  // ---------------------------------------------------------------- the offline copy

  function getCopy() {
    return db().then(function (d) { return d.get("meta", "copy"); }).then(function (copy) {
      if (copy && Date.now() - copy.synced_at > COPY_MAX_AGE_MS) {
        // Minimum data: a copy not refreshed for 7 days is deleted (the queue stays).
        return deleteCopy().then(function () { return null; });
      }
      return copy || null;
    });
  }

  function saveCopy(copy) {
    return db().then(function (d) { return d.put("meta", copy, "copy"); });
  }

  function deleteCopy() {
    return db().then(function (d) { return d.delete("meta", "copy"); });
  }

  // Fetch the copy of the logged-in user's villages and keep it (replacing an older one).
  function refreshCopy() {
    return fetch("/field/api/copy", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("copy " + r.status); }
      return r.json();
    }).then(function (copy) {
      copy.synced_at = Date.now();
      return saveCopy(copy).then(function () { return copy; });
    });
  }

  function copyIsFresh(copy, userId) {
    return copy && copy.user && copy.user.id === userId && Date.now() - copy.synced_at < COPY_REFRESH_MS;
  }

  // The copy belongs to one account: another account logging in on this phone gets none of it.
  function adoptUser(user) {
    return getCopy().then(function (copy) {
      if (copy && copy.user && copy.user.id !== user.id) {
        return deleteCopy().then(function () { return {changed: true, copy: null}; });
      }
      return {changed: false, copy: copy};
    });
  }

  function childrenOf(copy) {
    if (!copy) { return []; }
    var fields = copy.child_fields;
    return copy.children.map(function (row) {
      var child = {};
      for (var i = 0; i < fields.length; i++) { child[fields[i]] = row[i]; }
      return child;
    });
  }

  // The same rules as services/search.py: name or its start, the given name, pinyin, initials, last 4.
  function search(children, text) {
    var term = (text || "").replace(/\s+/g, "");
    if (!term) { return []; }
    if (/^\d{3}[\dXx]$/.test(term)) {
      term = term.toUpperCase();
      return children.filter(function (c) { return (c.id_last4 || "").toUpperCase() === term; });
    }
    if (/^[A-Za-z]+$/.test(term)) {
      term = term.toLowerCase();
      return children.filter(function (c) {
        return (c.initials || "").indexOf(term) === 0 || (c.pinyin || "").indexOf(term) === 0;
      });
    }
    return children.filter(function (c) {
      return c.name.indexOf(term) === 0 || givenName(c.name).indexOf(term) === 0;
    });
  }

  var COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "令狐", "端木", "南宫"];

  function givenName(name) {
    return COMPOUND_SURNAMES.indexOf(name.slice(0, 2)) >= 0 ? name.slice(2) : name.slice(1);
  }

  // ---------------------------------------------------------------- the queue

  function enqueue(item) {
    item.status = "pending";
    item.reason = "";
    return db().then(function (d) { return d.put("queue", item); }).then(function () { return item; });
  }

  function queueItems() {
    return db().then(function (d) { return d.getAll("queue"); }).then(function (items) {
      return items.sort(function (a, b) { return a.recorded_at < b.recorded_at ? -1 : 1; });
    });
  }

  function getItem(id) {
    return db().then(function (d) { return d.get("queue", id); });
  }

  function discard(id) {
    return db().then(function (d) { return d.delete("queue", id); });
  }

  // {pending, refused, others}: this account's items waiting and refused, and other accounts' items.
  function counts(userId) {
    return queueItems().then(function (items) {
      var c = {pending: 0, refused: 0, others: 0};
      items.forEach(function (item) {
        if (userId != null && item.user_id !== userId) { c.others += 1; }
        else if (item.status === "refused") { c.refused += 1; }
        else { c.pending += 1; }
      });
      return c;
    });
  }

  function photoBytes(item) {
    return (item.photos || []).reduce(function (n, p) { return n + p.data.byteLength; }, 0);
  }

  function batches(items) {
    var out = [], current = [], bytes = 0;
    items.forEach(function (item) {
      var size = photoBytes(item);
      if (current.length && (current.length >= BATCH_ITEMS || bytes + size > BATCH_PHOTO_BYTES)) {
        out.push(current); current = []; bytes = 0;
      }
      current.push(item); bytes += size;
    });
    if (current.length) { out.push(current); }
    return out;
  }

  function wire(item) {
    return {uuid: item.uuid, kind: item.kind, recorded_at: item.recorded_at, offline: !!item.offline, data: item.data};
  }

  function post(batch, userId, csrf) {
    var payload = {user_id: userId, items: batch.map(wire)};
    var withPhotos = batch.some(function (item) { return item.photos && item.photos.length; });
    var body, headers = {"X-CSRFToken": csrf};
    if (withPhotos) {
      body = new FormData();
      body.append("payload", JSON.stringify(payload));
      batch.forEach(function (item) {
        (item.photos || []).forEach(function (p) {
          body.append("photo:" + item.uuid, new Blob([p.data], {type: p.type || "image/jpeg"}), p.name || "photo.jpg");
        });
      });
    } else {
      body = JSON.stringify(payload);
      headers["Content-Type"] = "application/json";
    }
    return fetch("/field/api/sync", {method: "POST", body: body, headers: headers, credentials: "same-origin"});
  }

  var running = null;

  // Send this account's waiting items. Resolves {state, synced, refused, results}; state is "done",
  // "offline", "login" (the session ended: ask for the password), "other" (another account is
  // logged in: nothing is sent) or "error".
  function syncNow(options) {
    if (running) { return running; }
    running = lock(function () { return syncOnce(options || {}); }).then(function (r) {
      running = null; return r;
    }, function (e) { running = null; throw e; });
    return running;
  }

  function lock(fn) {
    if (root.navigator && root.navigator.locks && root.navigator.locks.request) {
      return root.navigator.locks.request("tonghu-field-sync", fn);
    }
    return fn();
  }

  function syncOnce(options) {
    var only = options.only;
    return probe().then(function (session) {
      if (session.state !== "ok") { return {state: session.state, synced: 0, refused: 0, results: []}; }
      var userId = session.user.id;
      return queueItems().then(function (items) {
        var mine = items.filter(function (item) {
          return item.user_id === userId && item.status === "pending" && (!only || item.uuid === only);
        });
        var others = items.filter(function (item) { return item.user_id !== userId; });
        if (!mine.length) {
          return {state: others.length ? "other" : "done", synced: 0, refused: 0, results: []};
        }
        var summary = {state: "done", synced: 0, refused: 0, results: []};
        var chain = Promise.resolve();
        batches(mine).forEach(function (batch) {
          chain = chain.then(function () {
            if (summary.state !== "done") { return null; }
            return post(batch, userId, session.csrf).then(function (r) {
              if (r.status === 401) { summary.state = "login"; return null; }
              return r.json().then(function (body) {
                if (r.status === 409) { summary.state = "other"; summary.error = body.error; return null; }
                if (!r.ok || !body.results) { summary.state = "error"; summary.error = body.error || ("同步失败（" + r.status + "）"); return null; }
                return settle(batch, body.results, summary);
              }, function () { summary.state = "error"; summary.error = "服务器的回答无法读取，请稍后重试"; });
            }, function () { summary.state = "offline"; });
          });
        });
        return chain.then(function () {
          if (summary.synced) {
            return refreshCopy().then(function () { return summary; }, function () { return summary; });
          }
          return summary;
        });
      });
    });
  }

  function settle(batch, results, summary) {
    var byId = {};
    results.forEach(function (r) { byId[r.uuid] = r; });
    return db().then(function (d) {
      var tx = d.transaction("queue", "readwrite");
      batch.forEach(function (item) {
        var r = byId[item.uuid];
        if (!r) { return; }
        summary.results.push(r);
        if (r.ok) {
          summary.synced += 1;
          tx.store.delete(item.uuid);
        } else {
          summary.refused += 1;
          item.status = "refused";
          item.reason = r.message;
          item.errors = r.errors || {};
          tx.store.put(item);
        }
      });
      return tx.done;
    });
  }

  // ---------------------------------------------------------------- leaving no trace

  // Everything this app keeps on the device: IndexedDB, the caches, the service worker.
  function wipe() {
    var jobs = [closeDb().then(function () {
      return new Promise(function (resolve) {
        var req = root.indexedDB.deleteDatabase(DB_NAME);
        req.onsuccess = req.onerror = req.onblocked = function () { resolve(); };
      });
    })];
    if (root.caches) {
      jobs.push(root.caches.keys().then(function (keys) {
        return Promise.all(keys.map(function (k) { return root.caches.delete(k); }));
      }));
    }
    if (root.navigator && root.navigator.serviceWorker && root.navigator.serviceWorker.getRegistrations) {
      jobs.push(root.navigator.serviceWorker.getRegistrations().then(function (regs) {
        return Promise.all(regs.map(function (r) { return r.unregister(); }));
      }));
    }
    return Promise.all(jobs);
  }

  root.TonghuField = {
    uuid4: uuid4,
    probe: probe,
    getCopy: getCopy,
    saveCopy: saveCopy,
    deleteCopy: deleteCopy,
    refreshCopy: refreshCopy,
    copyIsFresh: copyIsFresh,
    adoptUser: adoptUser,
    childrenOf: childrenOf,
    search: search,
    enqueue: enqueue,
    queueItems: queueItems,
    getItem: getItem,
    discard: discard,
    counts: counts,
    syncNow: syncNow,
    wipe: wipe,
    closeDb: closeDb
  };
})(typeof self !== "undefined" ? self : this);
