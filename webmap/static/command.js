/* gridgov command centre: the map page. Plain JavaScript, no framework; Leaflet comes from the
   app's own /assets, and every request goes to this server. The page's settings and its
   translated words come in <script type="application/json" id="command-map-config">. */
(function () {
  "use strict";

  var UNIT_STYLES = {
    street: {color: "#3f3f46", weight: 3, fillColor: "#a1a1aa", fillOpacity: 0.06},
    community: {color: "#2563eb", weight: 1.5, fillColor: "#93c5fd", fillOpacity: 0.1},
    grid: {color: "#16a34a", weight: 1, fillColor: "#86efac", fillOpacity: 0.12}
  };
  var ENDED = ["closed", "evaluated", "not_accepted", "duplicate", "void", "not_filed"];
  var POINT_COLOURS = {open: "#2563eb", overdue: "#dc2626", done: "#71717a", incident: "#ea580c"};

  function getJSON(url) {
    return fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) { throw new Error(url + ": HTTP " + response.status); }
        return response.json();
      });
  }

  function element(tag, text, attributes) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    return node;
  }

  function query(params) {
    return Object.keys(params).filter(function (key) { return params[key]; })
      .map(function (key) { return encodeURIComponent(key) + "=" + encodeURIComponent(params[key]); })
      .join("&");
  }

  function unitPopup(feature, level, config) {
    var p = feature.properties, box = element("div", null, {"class": "unit-popup"});
    box.appendChild(element("strong", p.name));
    box.appendChild(element("div", p.code));
    box.appendChild(element("a", config.text.caseList,
      {href: config.casesUrl + "?" + query({unit: p.code, period: config.period})}));
    if (config.heatUrl && level !== "district") {
      box.appendChild(document.createTextNode(" · "));
      box.appendChild(element("a", config.text.heatMap,
        {href: config.heatUrl + "?" + query({level: level, period: config.period})}));
    }
    return box;
  }

  function unitLayer(config, level, renderer) {
    var layer = L.geoJSON(null, {
      renderer: renderer,
      style: function () { return UNIT_STYLES[level]; },
      onEachFeature: function (feature, shape) {
        shape.bindTooltip(feature.properties.name, {sticky: true});
        shape.bindPopup(function () { return unitPopup(feature, level, config); });
      }
    });
    var loading = null;
    layer.load = function () {
      loading = loading || getJSON(config.unitsUrl + "?level=" + level)
        .then(function (data) { layer.addData(data); return layer; });
      return loading;
    };
    return layer;
  }

  function pointColour(props) {
    if (props.state === undefined) { return POINT_COLOURS.incident; }
    if (props.overdue) { return POINT_COLOURS.overdue; }
    return ENDED.indexOf(props.state) >= 0 ? POINT_COLOURS.done : POINT_COLOURS.open;
  }

  function pointPopup(props, config) {
    var box = element("div", null, {"class": "point-popup"});
    box.appendChild(element("strong", props.number || props.class_name));
    box.appendChild(element("div", props.class_code + " " + props.class_name));
    if (props.state) { box.appendChild(element("div", config.text.states[props.state] || props.state)); }
    if (props.source) { box.appendChild(element("div", config.text.sources[props.source] || props.source)); }
    if (props.url) { box.appendChild(element("a", config.text.open, {href: props.url})); }
    return box;
  }

  function pointLayer(config, name, renderer, status) {
    var layer = L.geoJSON(null, {
      pointToLayer: function (feature, latlng) {
        var colour = pointColour(feature.properties);
        return L.circleMarker(latlng, {renderer: renderer, radius: 5, weight: 1, color: "#fff",
                                       fillColor: colour, fillOpacity: 0.9});
      },
      onEachFeature: function (feature, marker) {
        marker.bindPopup(function () { return pointPopup(feature.properties, config); });
      }
    });
    var loading = null;
    layer.load = function () {
      loading = loading || getJSON(config.points[name]).then(function (data) {
        layer.addData(data);
        if (data.truncated) { status(config.text.truncated); }
        return layer;
      });
      return loading;
    };
    return layer;
  }

  function initMap(node, config) {
    var statusNode = document.getElementById("command-map-status");
    function status(message) { if (statusNode) { statusNode.textContent = message; } }
    var renderer = L.canvas({padding: 0.3});
    var map = L.map(node, {preferCanvas: true, zoomSnap: 0.25}).setView([31.58, 120.3], 13);
    L.control.scale({imperial: false}).addTo(map);
    var streets = unitLayer(config, "street", renderer);
    var overlays = {};
    overlays[config.text.streets] = streets;
    overlays[config.text.communities] = unitLayer(config, "community", renderer);
    overlays[config.text.grids] = unitLayer(config, "grid", renderer);
    overlays[config.text.cases] = pointLayer(config, "cases", renderer, status);
    overlays[config.text.incidents] = pointLayer(config, "incidents", renderer, status);
    var shown = [streets, overlays[config.text.communities]];
    ["cases", "incidents"].forEach(function (name) {
      if (config.show.indexOf(name) >= 0) { shown.push(overlays[config.text[name]]); }
    });
    Object.keys(overlays).forEach(function (key) {
      overlays[key].on("add", function () {
        overlays[key].load().catch(function () { status(config.text.failed); });
      });
    });
    shown.forEach(function (layer) { layer.addTo(map); });
    L.control.layers(null, overlays, {collapsed: false}).addTo(map);
    window.gridgovCommandMap = map;
    Promise.all(shown.map(function (layer) { return layer.load(); })).then(function () {
      var bounds = streets.getBounds();
      if (bounds.isValid()) { map.fitBounds(bounds); }
      document.body.setAttribute("data-map-ready", "1");
    }).catch(function (error) {
      status(config.text.failed);
      document.body.setAttribute("data-map-ready", "failed");
      if (window.console) { window.console.warn(error); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("command-map");
    var configNode = document.getElementById("command-map-config");
    if (node && configNode && window.L) { initMap(node, JSON.parse(configNode.textContent)); }
  });
}());
