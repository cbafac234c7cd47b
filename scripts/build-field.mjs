// `npm run build:field`: the phone's offline app from npm packages, into files the app serves itself
// (no CDN): idb → static/vendor/idb, the Workbox runtime → static/vendor/workbox, and the service
// worker static/field/sw.js (static/js/field/sw-src.js with the precache manifest injected).
import {copyFileSync, mkdirSync, readdirSync, renameSync, rmSync} from "node:fs";
import {join} from "node:path";
import {copyWorkboxLibraries, injectManifest} from "workbox-build";

const VENDOR = "static/vendor";

function copy(files, dest) {
  mkdirSync(dest, {recursive: true});
  for (const [from, to] of files) copyFileSync(from, join(dest, to));
}

copy([["node_modules/idb/build/umd.js", "umd.js"], ["node_modules/idb/LICENSE", "LICENSE"]], `${VENDOR}/idb`);

// The runtime, production builds only (workbox-sw loads *.prod.js), with its licence.
rmSync(`${VENDOR}/workbox`, {recursive: true, force: true});
const versioned = await copyWorkboxLibraries(VENDOR);
renameSync(join(VENDOR, versioned), `${VENDOR}/workbox`);
for (const name of readdirSync(`${VENDOR}/workbox`)) {
  const keep = name === "workbox-sw.js" || (name.endsWith(".prod.js") && !name.endsWith(".map"));
  if (!keep) rmSync(join(`${VENDOR}/workbox`, name));
}
copyFileSync("node_modules/workbox-sw/LICENSE", `${VENDOR}/workbox/LICENSE`);

const {count, size, warnings} = await injectManifest({
  swSrc: "static/js/field/sw-src.js",
  swDest: "static/field/sw.js",
  globDirectory: "static",
  globPatterns: [
    "field/*.html",
    "field/*.png",
    "field/manifest.webmanifest",
    "css/field.css",
    "js/field/core.js",
    "js/field/pages.js",
    "vendor/idb/umd.js",
    "favicon.svg",
  ],
  modifyURLPrefix: {"": "/static/"},
});
for (const w of warnings) console.warn(w);
console.log(`static/field/sw.js: ${count} files precached (${size} bytes)`);
