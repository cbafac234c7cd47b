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
precaching.precacheAndRoute([{"revision":"1788112d7d5d95b1017a515b67320a1d","url":"/static/field/visit.html"},{"revision":"3f10688819f05c95894679b047d245cf","url":"/static/field/today.html"},{"revision":"c3b1c4b1acfd5e0adb60df54e080d430","url":"/static/field/roll.html"},{"revision":"bf0fda83ae7be46eac381621d5637f40","url":"/static/field/icon-maskable-512.png"},{"revision":"90d782729c061ba8e892b11fec649019","url":"/static/field/icon-512.png"},{"revision":"a100e0b4e00d3ab2476cdc0e3d27e7d6","url":"/static/field/icon-192.png"},{"revision":"0ba413ceafd2f01e6ef1c9c35aabf0fb","url":"/static/field/manifest.webmanifest"},{"revision":"063d7b4a9dd73de4b7de3dcdbbdc5df6","url":"/static/css/field.css"},{"revision":"a62956569d4f01e8e146f9ed12a8600d","url":"/static/js/field/core.js"},{"revision":"bb619c16c5aa9a0b7e12e3be23126f84","url":"/static/js/field/pages.js"},{"revision":"ce47dada49417ebb6ef35f884da101b2","url":"/static/vendor/idb/umd.js"},{"revision":"e2cf766cd4125d4f33d18bda8115a3b3","url":"/static/favicon.svg"}], {ignoreURLParametersMatching: [/.*/]});

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
