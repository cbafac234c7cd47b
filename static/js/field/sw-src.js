// 童护 service worker (scope /field/), built by `npm run build:field` with Workbox's injectManifest
// into static/field/sw.js. The Workbox runtime is served by the app (static/vendor/workbox).
//
// What it keeps: the shells of 今日, the visit form and the attendance roll, and their scripts,
// styles and icons — none of which holds personal data. Pages and API answers are never cached
// here: the only personal data on the phone is the offline copy in IndexedDB (core.js).
importScripts("/static/vendor/workbox/workbox-sw.js");
workbox.setConfig({modulePathPrefix: "/static/vendor/workbox/", debug: false});
importScripts("/static/vendor/idb/umd.js", "/static/js/field/core.js");

var precaching = workbox.precaching;
var routing = workbox.routing;

self.skipWaiting();
workbox.core.clientsClaim();
precaching.cleanupOutdatedCaches();
precaching.precacheAndRoute(self.__WB_MANIFEST, {ignoreURLParametersMatching: [/.*/]});

// Online, a page comes from the server (which may ask to log in again); without a signal, or when
// it does not answer within a few seconds, from its precached shell.
var SHELLS = {
  "/field/": "/static/field/today.html",
  "/field/visit": "/static/field/visit.html",
  "/field/roll": "/static/field/roll.html"
};
var NETWORK_TIMEOUT_MS = 5000;

function fromNetwork(request) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, NETWORK_TIMEOUT_MS);
    fetch(request).then(function (response) { clearTimeout(timer); resolve(response); },
      function (error) { clearTimeout(timer); reject(error); });
  });
}

routing.registerRoute(
  function (options) { return options.request.mode === "navigate" && SHELLS[options.url.pathname]; },
  function (options) {
    return fromNetwork(options.request).catch(function () {
      return precaching.matchPrecache(SHELLS[options.url.pathname]).then(function (shell) {
        return shell || Response.error();
      });
    });
  }
);

// Background Sync where the browser has it (Chromium); elsewhere the pages retry on "online".
self.addEventListener("sync", function (event) {
  if (event.tag === "tonghu-field-sync") {
    event.waitUntil(self.TonghuField.syncNow().then(function (result) {
      return self.clients.matchAll().then(function (clients) {
        clients.forEach(function (c) { c.postMessage({type: "synced", result: result}); });
      });
    }));
  }
});
