/* gridgov field app service worker (scope /m/): the app shell works without network.
 *
 * Pages under /m/ are network-first (a slow answer falls back to the copy kept after the
 * last visit; the fresh copy replaces it when it arrives); the shell's CSS, JS and Leaflet
 * files are cache-first, in a cache named after VERSION, which the server derives from these
 * files, so a new release replaces them. /api/ and /photos/ are never cached: reports made
 * offline wait in the page's IndexedDB outbox, not here.
 */
"use strict";

const VERSION = "__VERSION__";
const PRECACHE = ["__PRECACHE__"];
const SHELL = `gridgov-m-shell-${VERSION}`;
const PAGES = "gridgov-m-pages";
const PAGE_TIMEOUT_MS = 4000;
const MAX_PAGES = 40;

const isPage = (path) => path.startsWith("/m/") && !path.endsWith(".js");
const usable = (response) => response && response.ok && response.type === "basic"
  && !response.redirected;

async function keep(cacheName, key, response) {
  const cache = await caches.open(cacheName);
  await cache.put(key, response);
  if (cacheName === PAGES) {
    const keys = await cache.keys();
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_PAGES))) await cache.delete(old);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    await Promise.all(PRECACHE.map(async (path) => {
      try {
        const response = await fetch(path, {credentials: "same-origin", cache: "no-cache"});
        if (usable(response)) await keep(isPage(path) ? PAGES : SHELL, path, response);
      } catch (e) { /* offline while installing: kept on first use instead */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("gridgov-m-shell-") && name !== SHELL) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function page(event, path) {
  const network = fetch(event.request).then(async (response) => {
    if (usable(response)) await keep(PAGES, path, response.clone());
    return response;
  });
  event.waitUntil(network.catch(() => null));
  const timeout = new Promise((resolve) => setTimeout(resolve, PAGE_TIMEOUT_MS, null));
  const cached = await caches.match(path, {cacheName: PAGES});
  try {
    const first = cached ? await Promise.race([network, timeout]) : await network;
    if (first) return first;
  } catch (e) { /* offline */ }
  return cached || offlinePage();
}

function offlinePage() {
  const links = PRECACHE.filter(isPage).map((p) => `<li><a href="${p}">${p}</a></li>`).join("");
  return new Response(
    `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">`
    + `<title>离线 Offline</title><h1>离线 Offline</h1>`
    + `<p>此页面未保存在手机上。This page is not kept on this phone.</p><ul>${links}</ul>`,
    {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
}

async function asset(event, path) {
  const cached = await caches.match(path, {cacheName: SHELL});
  if (cached) return cached;
  const response = await fetch(event.request);
  if (usable(response)) event.waitUntil(keep(SHELL, path, response.clone()));
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/photos/")) return;
  if (request.mode === "navigate" && isPage(url.pathname)) {
    event.respondWith(page(event, url.pathname));
  } else if (PRECACHE.includes(url.pathname) && !isPage(url.pathname)) {
    event.respondWith(asset(event, url.pathname));
  }
});
