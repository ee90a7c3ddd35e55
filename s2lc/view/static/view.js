// s2lc view: land cover and change over the dates, on a Leaflet map.
// The same page runs against `s2lc view` (index.json says mode "server": points are asked of
// /point) and as a static site written by `s2lc view --export` (mode "static": points are read
// from grids/<layer>.json). Every URL is relative, so a site works from any folder.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { index: null, map: null, dateIndex: 0, shown: {}, changeLayer: null, grids: {}, last: null, marker: null };
  window.s2lcView = state;  // for the browser tests and for curious users

  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  const swatch = (c) => `<span class="swatch" style="background:${rgb(c)}"></span>`;
  const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
  const latLngBounds = (b) => L.latLngBounds([b[1], b[0]], [b[3], b[2]]);

  function tileLayer(layer, pane, opacity) {
    const [minNative, maxNative] = layer.zoom || state.index.zoom;  // a static site gives each layer's own
    const options = { pane, opacity, bounds: latLngBounds(layer.bounds), maxZoom: 22, tileSize: 256,
                      className: `s2lc-${layer.kind}` };
    if (state.index.mode === "static") Object.assign(options, { minNativeZoom: minNative, maxNativeZoom: maxNative });
    const tiles = L.tileLayer(`tiles/${encodeURIComponent(layer.id)}/{z}/{x}/{y}.png`, options);
    tiles.layerId = layer.id;
    return tiles;
  }

  // Each tile (group) shows its latest map sensed on or before the chosen date.
  function mapsAt(date) {
    const latest = {};
    for (const layer of state.index.landcover) {
      if (layer.date <= date) latest[layer.group] = layer;
    }
    return Object.values(latest);
  }

  function setLayers(wanted, pane, opacity) {
    const keep = new Set(wanted.map((l) => l.id));
    for (const [id, tiles] of Object.entries(state.shown)) {
      if (tiles.options.pane === pane && !keep.has(id)) { state.map.removeLayer(tiles); delete state.shown[id]; }
    }
    for (const layer of wanted) {
      if (!state.shown[layer.id]) state.shown[layer.id] = tileLayer(layer, pane, opacity).addTo(state.map);
    }
  }

  function showDate(i) {
    state.dateIndex = i;
    const date = state.index.dates[i];
    $("date-label").textContent = date;
    const maps = mapsAt(date);
    const opacity = $("opacity").value / 100;
    setLayers($("show-landcover").checked ? maps : [], "landcover", opacity);
    const byId = Object.fromEntries(state.index.truecolour.map((l) => [l.id, l]));
    const colours = $("show-truecolour").checked ? maps.filter((m) => m.truecolour && byId[m.truecolour]).map((m) => byId[m.truecolour]) : [];
    setLayers(colours, "truecolour", 1);
    const others = maps.filter((m) => m.date !== date).map((m) => `${m.group}: ${m.date}`);
    $("status").textContent = others.length ? `Tiles not sensed that day show their latest earlier map (${others.join(", ")}).` : "";
    document.body.dataset.date = date;
    if (state.last) showInfo(state.last);
  }

  function fillLegend(list, entries) {
    list.innerHTML = entries.map((e) => `<li data-code="${e.code}">${swatch(e.color)}<span>${escapeHtml(e.label)}</span></li>`).join("");
  }

  // Every class of every map, once per name (maps of different models may give one code
  // different classes), in the order of the first legend that has it.
  function classLegend(layers) {
    const byName = new Map();
    for (const layer of layers || state.index.landcover) for (const e of layer.legend) if (!byName.has(e.name)) byName.set(e.name, e);
    return [...byName.values()];
  }
  const layerById = (id) => state.index.landcover.find((l) => l.id === id);

  function showChange(id) {
    if (state.changeLayer) { state.map.removeLayer(state.changeLayer); state.changeLayer = null; }
    const layer = state.index.change.find((l) => l.id === id);
    $("change-legend-box").hidden = !layer;
    document.body.dataset.change = layer ? layer.id : "";
    if (!layer) return;
    state.changeLayer = tileLayer(layer, "change", $("opacity").value / 100).addTo(state.map);
    fillLegend($("change-legend"), layer.legend.filter((e) => e.drawn));  // not what the tiles leave clear
    if (state.last) showInfo(state.last);
  }

  // --- the click: class, confidence and change at a point -------------------------------
  async function grid(id) {
    if (!state.grids[id]) {
      state.grids[id] = fetch(`grids/${encodeURIComponent(id)}.json`).then((r) => r.json()).then((g) => {
        const bytes = (b64) => Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
        return { ...g, codes: bytes(g.codes), confidence: g.confidence ? bytes(g.confidence) : null };
      });
    }
    return state.grids[id];
  }

  async function pointFromGrids(latlng) {
    const p = L.CRS.EPSG3857.project(latlng);
    const out = { landcover: [], change: [] };
    for (const kind of ["landcover", "change"]) {
      for (const layer of state.index[kind]) {
        if (!latLngBounds(layer.bounds).contains(latlng)) continue;
        const g = await grid(layer.id);
        const [x0, y0, x1, y1] = g.bounds;
        const col = Math.floor((p.x - x0) / (x1 - x0) * g.width), row = Math.floor((y1 - p.y) / (y1 - y0) * g.height);
        if (col < 0 || row < 0 || col >= g.width || row >= g.height) continue;
        const code = g.codes[row * g.width + col];
        if (code === 0) continue;
        const entry = layer.legend.find((e) => e.code === code) || { name: null, label: null };
        const item = { layer: layer.id, group: layer.group, date: layer.date, code, name: entry.name, label: entry.label };
        if (kind === "landcover") {
          const c = g.confidence ? g.confidence[row * g.width + col] : 255;
          item.confidence = c === 255 ? null : c / 250;
        } else item.before = layer.before;
        out[kind].push(item);
      }
    }
    return out;
  }

  async function query(latlng) {
    if (state.index.mode === "static") return pointFromGrids(latlng);
    const r = await fetch(`point?lon=${latlng.lng}&lat=${latlng.lat}`);
    if (!r.ok) {
      const detail = (await r.json().catch(() => ({}))).detail;
      throw new Error(Array.isArray(detail) ? detail.map((d) => d.msg).join("; ") : detail || r.statusText);
    }
    return r.json();
  }

  function showInfo(found) {
    state.last = found;
    if (!state.marker) state.marker = L.circleMarker(found.latlng, { pane: "marker", interactive: false, radius: 6, color: "#000", weight: 2, fillColor: "#fff", fillOpacity: 0.9 });
    state.marker.setLatLng(found.latlng).addTo(state.map);
    const date = state.index.dates[state.dateIndex];
    const here = found.values.landcover;
    const shownIds = new Set(mapsAt(date).map((l) => l.id));
    const current = here.find((v) => shownIds.has(v.layer));
    $("info").hidden = false;
    $("info-where").textContent = `${found.latlng.lat.toFixed(5)}° N, ${found.latlng.lng.toFixed(5)}° E`;
    $("info-date").textContent = current ? current.date : date;
    $("info-class").textContent = current ? current.label : "no data";
    $("info-class").dataset.code = current ? current.code : 0;
    $("info-confidence").textContent = current && current.confidence != null ? `(confidence ${(100 * current.confidence).toFixed(0)} %)` : "";
    const change = state.changeLayer && found.values.change.find((v) => v.layer === state.changeLayer.layerId);
    $("info-change-line").hidden = !change;
    if (change) {
      $("info-change-dates").textContent = `${change.before} → ${change.date}`;
      $("info-change").textContent = change.label;
    }
    $("info-dates").tBodies[0].innerHTML = here.map((v) => {
      const layer = layerById(v.layer);
      const e = layer && layer.legend.find((x) => x.code === v.code);  // the map's own legend
      const conf = v.confidence != null ? `${(100 * v.confidence).toFixed(0)} %` : "–";
      return `<tr class="${v === current ? "current" : ""}"><td>${v.date}</td><td>${e ? swatch(e.color) : ""} ${escapeHtml(v.label || v.code)}</td><td>${conf}</td></tr>`;
    }).join("");
    drawChart(current ? current.group : (here[0] || {}).group);
  }

  // Stacked bars: hectares of each class, one bar per date of the tile.
  function drawChart(group) {
    const layers = state.index.landcover.filter((l) => l.group === group);
    const where = !group ? "" : group.startsWith("untiled") ? " (this scene)" : ` (tile ${group})`;
    $("chart-title").textContent = `Class areas over the dates${where}`;
    if (!layers.length) { $("chart").innerHTML = ""; return; }
    const legend = classLegend(layers).filter((e) => layers.some((l) => (l.areas[e.name] || 0) > 0));
    const total = Math.max(...layers.map((l) => legend.reduce((s, e) => s + (l.areas[e.name] || 0), 0)), 1e-9);
    const W = 316, H = 150, left = 44, bottom = 20, barW = Math.min(40, (W - left) / layers.length * 0.7);
    const step = (W - left) / layers.length, scale = (H - bottom - 6) / total;
    let svg = `<svg width="${W}" height="${H}" role="img" aria-label="Class areas over the dates">`;
    svg += `<text x="2" y="12" font-size="10">${total.toFixed(0)} ha</text><line x1="${left - 4}" y1="${H - bottom}" x2="${W}" y2="${H - bottom}" stroke="#999"/>`;
    layers.forEach((l, i) => {
      let y = H - bottom;
      const x = left + i * step + (step - barW) / 2;
      for (const e of legend) {
        const ha = l.areas[e.name] || 0;
        if (ha <= 0) continue;
        const h = ha * scale;
        y -= h;
        svg += `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${rgb(e.color)}"><title>${l.date}: ${escapeHtml(e.label)} ${ha.toFixed(1)} ha</title></rect>`;
      }
      svg += `<text x="${(x + barW / 2).toFixed(1)}" y="${H - 6}" font-size="9" text-anchor="middle">${l.date.slice(2)}</text>`;
    });
    $("chart").innerHTML = svg + "</svg>";
  }

  async function onClick(e) {
    const latlng = e.latlng.wrap();  // a click on a copy of the world east or west of this one
    try {
      showInfo({ latlng, values: await query(latlng) });
      $("error").textContent = "";
      document.body.dataset.clicked = String(Number(document.body.dataset.clicked || 0) + 1);
    } catch (err) {
      $("error").textContent = `Could not read this point: ${err.message}`;
    }
  }

  async function start() {
    const index = await (await fetch("index.json")).json();
    state.index = index;
    const map = L.map("map", { zoomSnap: 0.5, maxZoom: 22 });
    state.map = map;
    for (const [pane, z] of [["truecolour", 250], ["landcover", 350], ["change", 450], ["marker", 550]]) map.createPane(pane).style.zIndex = z;
    if (index.basemap) L.tileLayer(index.basemap, { maxZoom: 22, attribution: index.attribution || "" }).addTo(map);
    map.attributionControl.addAttribution(`s2lc ${index.version}`);
    map.fitBounds(latLngBounds(index.bounds));
    L.control.scale({ imperial: false }).addTo(map);

    const slider = $("date");
    slider.max = String(index.dates.length - 1);
    slider.value = "0";
    slider.disabled = index.dates.length < 2;
    slider.addEventListener("input", () => showDate(Number(slider.value)));
    $("opacity").addEventListener("input", () => {
      $("opacity-label").textContent = `${$("opacity").value} %`;
      const opacity = $("opacity").value / 100;  // the maps over the scene: land cover and change
      for (const tiles of Object.values(state.shown)) if (tiles.options.pane === "landcover") tiles.setOpacity(opacity);
      if (state.changeLayer) state.changeLayer.setOpacity(opacity);
    });
    $("show-landcover").addEventListener("change", () => showDate(state.dateIndex));
    $("show-truecolour").addEventListener("change", () => showDate(state.dateIndex));
    const groups = new Set(index.change.map((l) => l.group));
    for (const layer of index.change) {
      const option = document.createElement("option");
      option.value = layer.id;
      option.textContent = `${layer.before} → ${layer.date}` + (groups.size > 1 ? ` (${layer.group})` : "");
      $("change").appendChild(option);
    }
    $("change").disabled = !index.change.length;
    $("change").addEventListener("change", () => showChange($("change").value));
    $("info-close").addEventListener("click", () => {
      $("info").hidden = true;
      $("error").textContent = "";
      state.last = null;
      if (state.marker) state.marker.remove();
    });
    fillLegend($("legend"), classLegend());
    map.on("click", onClick);
    // the keyboard's click: Enter or Space on the focused map asks about the point at its centre
    // (the arrow keys pan, + and - zoom: Leaflet's own keys)
    map.getContainer().addEventListener("keydown", (e) => {
      if (e.target !== map.getContainer() || (e.key !== "Enter" && e.key !== " ")) return;
      e.preventDefault();
      onClick({ latlng: map.getCenter() });
    });
    showDate(0);
    document.body.dataset.ready = "1";
  }

  start().catch((err) => {
    document.body.dataset.ready = "error";
    $("error").textContent = `The map could not start: ${err.message}`;
  });
})();
