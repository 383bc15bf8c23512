/* gridgov field pages: maps, the report form, on-site verification and the offline outbox.
 *
 * A report is written to the outbox (IndexedDB) first, then sent. Sending uploads the photos
 * (remembering their ids), then posts the report with the idempotency key generated when the
 * form was filled in, so a retry after a lost answer returns the first report instead of a
 * second one. The outbox is flushed on load, when the network comes back ("online"), and on a
 * timer with exponential backoff; answers 4xx other than 401/408/429 are final and shown.
 * No framework: plain DOM, Leaflet from the app's own /assets.
 */
(() => {
  "use strict";

  const CONFIG = JSON.parse(document.getElementById("gridgov-config").textContent);
  const MAX_SIDE = 1600;            // px, long side of a photo before upload
  const JPEG_QUALITY = 0.8;
  const MAX_PHOTOS = 3;             // per report from this page
  const MAX_JOBS = 20;              // reports waiting in the outbox
  const MAX_OUTBOX_BYTES = 30 * 1024 * 1024;
  const BACKOFF_MS = [2000, 5000, 15000, 30000, 60000, 120000, 300000];
  const $ = (id) => document.getElementById(id);

  // -- small helpers ---------------------------------------------------------------------------
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));  // plain-HTTP pages lack randomUUID
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
      // final: sending again cannot help (but a stale CSRF token or a lost session can)
      this.final = status >= 400 && status < 500 && ![401, 408, 429].includes(status)
        && !/^CSRF/.test(message);
    }
  }

  async function readError(response) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (e) { /* not JSON */ }
    return new HttpError(response.status, message);
  }

  async function freshToken() {
    const response = await fetch(CONFIG.csrf, {headers: {Accept: "application/json"},
                                               cache: "no-store"});
    if (!response.ok || response.redirected) throw await readError(response);
    return (await response.json()).token;
  }

  async function postJson(url, body, token) {
    const response = await fetch(url, {
      method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json", Accept: "application/json",
                "X-CSRFToken": token},
    });
    if (!response.ok) throw await readError(response);
    return response.json();
  }

  async function uploadPhoto(blob, token) {
    const form = new FormData();
    form.append("photo", blob, "photo.jpg");
    const response = await fetch(CONFIG.photos, {
      method: "POST", body: form, headers: {Accept: "application/json", "X-CSRFToken": token},
    });
    if (!response.ok) throw await readError(response);
    return (await response.json()).id;
  }

  /** A camera photo shrunk to MAX_SIDE px as JPEG (orientation applied); the original when
   *  the browser cannot decode it (the server checks and converts every upload anyway). */
  async function shrink(file) {
    try {
      const bitmap = await createImageBitmap(file, {imageOrientation: "from-image"});
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      if (bitmap.close) bitmap.close();
      const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", JPEG_QUALITY));
      return blob && blob.size < file.size ? blob : (blob || file);
    } catch (e) {
      return file;
    }
  }

  // -- the outbox (IndexedDB) ------------------------------------------------------------------
  const outbox = (() => {
    let opened = null;
    function db() {
      opened = opened || new Promise((resolve, reject) => {
        const request = indexedDB.open("gridgov-m", 1);
        request.onupgradeneeded = () => request.result.createObjectStore("outbox",
                                                                         {keyPath: "key"});
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      return opened;
    }
    async function run(mode, action) {
      const store = (await db()).transaction("outbox", mode).objectStore("outbox");
      return new Promise((resolve, reject) => {
        const request = action(store);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return {
      all: () => run("readonly", (s) => s.getAll()),
      put: (job) => run("readwrite", (s) => s.put(job)),
      remove: (key) => run("readwrite", (s) => s.delete(key)),
    };
  })();

  function jobBytes(job) {
    return job.photos.reduce((sum, blob) => sum + (blob ? blob.size : 0), 0);
  }

  async function enqueue(job) {
    const jobs = (await outbox.all()).filter((j) => j.key !== job.key);
    if (jobs.length >= MAX_JOBS) {
      throw new Error(`待发送的上报已满 (${MAX_JOBS})，请联网发送后再试 · outbox full`);
    }
    const bytes = jobs.reduce((sum, j) => sum + jobBytes(j), jobBytes(job));
    if (bytes > MAX_OUTBOX_BYTES) {
      throw new Error("待发送的照片太多，请减少照片或联网后再试 · outbox storage full");
    }
    await outbox.put(job);
  }

  /** Send one job: photos first (ids kept, so a retry does not upload them again). */
  async function sendJob(job, token) {
    for (let i = 0; i < job.photos.length; i += 1) {
      if (job.photoIds[i] != null || !job.photos[i]) continue;
      try {
        job.photoIds[i] = await uploadPhoto(job.photos[i], token);
      } catch (error) {
        if (!(error instanceof HttpError) || !error.final) throw error;
        job.warnings.push(`照片 ${i + 1} 未上传: ${error.message}`);  // the report still goes
        job.photos[i] = null;
      }
      await outbox.put(job);
    }
    const body = {...job.report, photo_ids: job.photoIds.filter((id) => id != null)};
    return postJson(CONFIG.reports, body, token);
  }

  let flushing = null;
  let timer = null;
  const results = new Map();  // idempotency key -> answer, for the page that made the report

  function flush() {
    if (!flushing) {
      const run = () => flushOnce().finally(() => { flushing = null; });
      flushing = navigator.locks ? navigator.locks.request("gridgov-outbox", run) : run();
    }
    return flushing;
  }

  async function flushOnce() {
    const now = Date.now();
    const due = (await outbox.all()).filter(
      (j) => j.userId === CONFIG.user && !j.failed && (j.nextTry || 0) <= now);
    if (due.length && navigator.onLine !== false) {
      let token = null;
      for (const job of due) {
        try {
          token = token || await freshToken();
          const answer = await sendJob(job, token);
          answer.warnings = job.warnings;
          results.set(job.key, answer);
          await outbox.remove(job.key);
          document.dispatchEvent(new CustomEvent("gridgov:sent", {detail: {job, answer}}));
        } catch (error) {
          if (error instanceof HttpError && error.status === 401) {
            showOutboxNote("登录已过期，请重新登录后发送 · sign in again to send", CONFIG.login);
            break;
          }
          if (error instanceof HttpError && error.final) {
            job.failed = error.message;
          } else {
            job.attempts = (job.attempts || 0) + 1;
            const wait = BACKOFF_MS[Math.min(job.attempts, BACKOFF_MS.length) - 1];
            job.nextTry = Date.now() + wait * (0.8 + 0.4 * Math.random());
            job.lastError = error.message;
          }
          await outbox.put(job);
          if (!(error instanceof HttpError)) break;  // the network is down: stop this round
        }
      }
    }
    await renderOutbox();
  }

  function schedule(jobs) {
    clearTimeout(timer);
    const next = jobs.filter((j) => j.userId === CONFIG.user && !j.failed)
      .map((j) => j.nextTry || 0);
    if (next.length) timer = setTimeout(flush, Math.max(1000, Math.min(...next) - Date.now()));
  }

  function showOutboxNote(text, link) {
    const list = $("outbox-list");
    if (!list) return;
    const item = el("li", {class: "failed"}, text);
    if (link) item.append(" ", el("a", {href: link, text: "登录 Sign in"}));
    list.prepend(item);
  }

  async function renderOutbox() {
    const box = $("outbox");
    if (!box) return;
    const jobs = await outbox.all();
    schedule(jobs);
    box.hidden = jobs.length === 0;
    $("outbox-count").textContent = `${jobs.length} 条上报待发送 · ${jobs.length} `
      + `report${jobs.length === 1 ? "" : "s"} waiting to be sent`;
    const list = $("outbox-list");
    list.replaceChildren(...jobs.map((job) => {
      const item = el("li", {"data-key": job.key},
        `${job.label} · ${new Date(job.created).toLocaleTimeString()}`);
      if (job.userId !== CONFIG.user) item.append(" （其他账号 another account）");
      if (job.failed) {
        item.className = "failed";
        item.append(` — ${job.failed} `, el("button", {type: "button", class: "small secondary",
                                                       "data-discard": job.key, text: "删除"}));
      } else if (job.lastError) {
        item.append(` — 重试中 retrying (${job.lastError})`);
      }
      return item;
    }));
  }

  function watchNetwork() {
    const net = $("net");
    const show = () => { if (net) net.hidden = navigator.onLine !== false; };
    show();
    window.addEventListener("offline", show);
    window.addEventListener("online", async () => {
      show();
      for (const job of await outbox.all()) {  // back online: try everything now
        if (job.nextTry) { job.nextTry = 0; await outbox.put(job); }
      }
      flush();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") flush();
    });
    const send = $("outbox-send");
    if (send) {
      send.addEventListener("click", async () => {
        for (const job of await outbox.all()) {
          if (job.nextTry) { job.nextTry = 0; await outbox.put(job); }
        }
        flush();
      });
    }
    const list = $("outbox-list");
    if (list) {
      list.addEventListener("click", async (event) => {
        const key = event.target.getAttribute("data-discard");
        if (key && confirm("删除这条未发送的上报？ Discard this report?")) {
          await outbox.remove(key);
          renderOutbox();
        }
      });
    }
  }

  // -- maps ------------------------------------------------------------------------------------
  function gridsMap(onPick) {
    const node = $("map");
    if (!node || typeof L === "undefined") return null;
    const data = JSON.parse($(node.dataset.grids).textContent);
    const map = L.map(node, {attributionControl: false, zoomSnap: 0.25});
    const layer = L.geoJSON(data, {
      style: {color: "#16a34a", weight: 2, fillColor: "#16a34a", fillOpacity: 0.15},
      onEachFeature: (f, l) => l.bindTooltip(`${f.properties.name} ${f.properties.code}`),
    }).addTo(map);
    if (data.features.length) map.fitBounds(layer.getBounds(), {padding: [8, 8]});
    else map.setView([31.58, 120.30], 13);
    if (onPick) {
      layer.on("click", (e) => onPick(e.latlng));
      map.on("click", (e) => onPick(e.latlng));
    }
    return map;
  }

  function circle(map, marker, lat, lon) {
    const point = L.circleMarker([lat, lon], {radius: 9, color: "#dc2626", weight: 3,
                                              fillOpacity: 0.6});
    if (marker) marker.remove();
    return point.addTo(map);
  }

  function locate(onFix, onError) {
    if (!navigator.geolocation) { onError("此设备不能定位 · no geolocation"); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => onFix(p.coords.longitude, p.coords.latitude, p.coords.accuracy),
      (e) => onError(`定位失败 (${e.message || e.code})，请在地图上点选 · tap the map`),
      {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  }

  // -- photos input ----------------------------------------------------------------------------
  function photoPicker() {
    const input = $("photos");
    const shrunk = [];
    if (!input) return shrunk;
    input.addEventListener("change", async () => {
      shrunk.length = 0;
      const previews = $("previews");
      previews.replaceChildren();
      for (const file of [...input.files].slice(0, MAX_PHOTOS)) {
        const blob = await shrink(file);
        shrunk.push(blob);
        previews.append(el("img", {src: URL.createObjectURL(blob), alt: "照片"}));
      }
    });
    return shrunk;
  }

  function showError(text) {
    const node = $("form-error");
    node.textContent = text;
    node.hidden = !text;
  }

  // -- the report page -------------------------------------------------------------------------
  function reportPage() {
    const form = $("report-form");
    const result = $("result");
    const photos = photoPicker();
    let where = null;  // {lon, lat, crs, label}
    let marker = null;
    const map = gridsMap((latlng) => {  // a tap on the map: CGCS2000 like the grids drawn
      where = {lon: latlng.lng, lat: latlng.lat, crs: "cgcs2000", label: "地图选点 map"};
      marker = circle(map, marker, latlng.lat, latlng.lng);
      showWhere();
    });
    const newKey = () => { $("idempotency-key").value = uuid(); };
    const showWhere = () => {
      $("location-text").textContent = where
        ? `${where.label} ${where.lon.toFixed(5)}, ${where.lat.toFixed(5)}`
        + (where.accuracy ? ` ±${Math.round(where.accuracy)} m` : "") : "";
    };
    const gps = () => {
      $("location-text").textContent = "定位中… locating";
      locate((lon, lat, accuracy) => {
        where = {lon, lat, accuracy, crs: "wgs84", label: "GPS"};
        if (map) marker = circle(map, marker, lat, lon);
        showWhere();
      }, (message) => { if (!where) $("location-text").textContent = message; });
    };
    newKey();  // the key is made when the form is filled in, and kept through every retry
    gps();
    $("locate").addEventListener("click", gps);

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const select = $("class-code");
      if (!select.value) { showError("请选择问题类别 · choose a class"); return; }
      if (!where) { showError("还没有位置：请定位或在地图上点选 · no location yet"); return; }
      const key = $("idempotency-key").value || uuid();
      const job = {
        key, userId: CONFIG.user, created: Date.now(), attempts: 0, nextTry: 0,
        label: select.options[select.selectedIndex].textContent.trim(),
        report: {idempotency_key: key, class_code: select.value,
                 description: $("description").value, lon: where.lon, lat: where.lat,
                 crs: where.crs, reported_at: new Date().toISOString()},
        photos: photos.slice(), photoIds: photos.map(() => null), warnings: [],
      };
      const button = $("submit");
      button.disabled = true;
      try {
        await enqueue(job);
      } catch (error) {
        showError(error.message);
        button.disabled = false;
        return;
      }
      // the report is safe on the phone: clear the form for the next one
      form.reset();
      $("idempotency-key").value = "";
      photos.length = 0;
      $("previews").replaceChildren();
      await flush();
      if (!results.has(key)) await flush();  // a round already running may have missed it
      button.disabled = false;
      const jobs = await outbox.all();
      const waiting = jobs.find((j) => j.key === key);
      if (results.has(key)) showResult(results.get(key));
      else if (waiting && waiting.failed) showFailed(waiting.failed);
      else showQueued();
      newKey();
    });

    function showQueued() {
      result.className = "result queued";
      result.hidden = false;
      result.replaceChildren(el("p", {text: "已保存在手机上，联网后自动发送。"
        + " Saved on this phone; it will be sent when the network is back."}));
    }

    function showFailed(message) {
      result.className = "result failed";
      result.hidden = false;
      result.replaceChildren(el("p", {text: `未能上报 · not accepted: ${message}`}));
    }
  }

  function unitLine(answer) {
    const {grid, community, street} = answer.incident;
    if (!grid) return "不在任何网格内 · outside the grids";
    return `${street.name} · ${community.name} · ${grid.name} (${grid.code})`;
  }

  function showResult(answer) {
    const result = $("result");
    if (!result) return;
    result.className = "result";
    result.hidden = false;
    const parts = [el("p", {id: "result-grid"}, el("b", {text: "已上报 Reported: "}),
                      unitLine(answer))];
    if (answer.case) {
      parts.push(el("p", {}, "案件 ", el("a", {href: answer.case.url, id: "result-case",
                                               text: answer.case.number}),
                     ` · ${answer.case.state_label}`));
    }
    if (answer.replayed) parts.push(el("p", {text: "（此前已收到，未重复上报 already received）"}));
    if (answer.possible_duplicates.length) {
      const list = el("ul", {id: "duplicates"});
      for (const d of answer.possible_duplicates) {
        list.append(el("li", {}, el("a", {href: d.url, text: d.number}),
                       ` ${d.state} · ${d.distance_m} m`));
      }
      parts.push(el("p", {text: "附近可能重复的案件 · possible duplicates nearby:"}), list);
    }
    for (const warning of answer.warnings || []) parts.push(el("p", {class: "error",
                                                                     text: warning}));
    result.replaceChildren(...parts);
  }

  // -- the case page: on-site verification (needs the network) ---------------------------------
  function casePage() {
    const form = $("verify-form");
    if (!form) return;
    const photos = photoPicker();
    let where = null;
    locate((lon, lat, accuracy) => {
      where = {lon, lat, crs: "wgs84"};
      $("location-text").textContent = `GPS ${lon.toFixed(5)}, ${lat.toFixed(5)}`
        + ` ±${Math.round(accuracy)} m`;
    }, (message) => { $("location-text").textContent = message; });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const result = event.submitter ? event.submitter.value : "pass";
      const note = $("verify-note").value.trim();
      if (result === "fail" && !note) { showError("不通过时请填写说明 · say why it fails"); return; }
      if (navigator.onLine === false) { showError("核查需要联网 · verification needs the network"); return; }
      const buttons = form.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      try {
        const token = await freshToken();
        const photoIds = [];
        for (const blob of photos) photoIds.push(await uploadPhoto(blob, token));
        const caseId = document.querySelector("[data-case]").dataset.case;
        const url = CONFIG.verify.replace("/0/", `/${caseId}/`);
        const answer = await postJson(url, {result, note, photo_ids: photoIds,
                                            ...(where || {})}, token);
        $("case-state").textContent = answer.case.state_label;
        form.replaceChildren(el("p", {class: "result", id: "verify-done",
                                      text: `已提交 Done: ${answer.case.state_label}`}));
        setTimeout(() => location.reload(), 800);
      } catch (error) {
        showError(error.message || String(error));
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
  }

  // -- start -----------------------------------------------------------------------------------
  function start() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register(CONFIG.sw, {scope: CONFIG.sw.replace(/sw\.js$/, "")})
        .catch(() => { /* pages still work online */ });
    }
    const logout = document.querySelector("form[data-logout]");
    if (logout && window.caches) {  // pages of this account must not outlive the session
      logout.addEventListener("submit", () => {
        caches.keys().then((names) => names.filter((n) => n.includes("-pages"))
          .forEach((n) => caches.delete(n)));
      });
    }
    document.addEventListener("gridgov:sent", (event) => {
      if (document.body.dataset.page === "report") showResult(event.detail.answer);
    });
    watchNetwork();
    const page = document.body.dataset.page;
    if (page === "home") gridsMap(null);
    if (page === "report") reportPage();
    if (page === "case") casePage();
    flush();
  }

  window.gridgov = {outbox, flush, results};  // for the browser tests and debugging
  start();
})();
