/* The device map of the cockpit's home page, drawn with Leaflet (served by cot from
   django-leaflet's copy). The world outline comes from cot itself, so the map works with no
   internet connection; tiles are drawn over it only when the operator configured a tile
   server (data-tiles). Device names go into the popups as text, never as HTML. */
(function () {
  "use strict";

  function popup(point, urlPattern) {
    const box = document.createElement("div");
    const link = document.createElement("a");
    link.href = urlPattern.replace("{id}", String(point.pk));
    link.textContent = point.name || point.external_id;
    box.appendChild(link);
    const state = document.createElement("div");
    state.textContent = (point.online ? "online" : "offline") + (point.located_at ? ", located " + point.located_at : "");
    box.appendChild(state);
    return box;
  }

  function draw(element) {
    if (element.dataset.drawn || !window.L) {
      return;
    }
    element.dataset.drawn = "true";
    const points = JSON.parse(document.getElementById(element.dataset.points).textContent);
    const map = window.L.map(element, {worldCopyJump: true, minZoom: 1, maxZoom: 18}).setView([20, 0], 1);
    if (element.dataset.tiles) {
      window.L.tileLayer(element.dataset.tiles, {attribution: element.dataset.attribution, maxZoom: 18}).addTo(map);
    }
    fetch(element.dataset.outline)
      .then(function (response) { return response.json(); })
      .then(function (outline) {
        window.L.geoJSON(outline, {
          interactive: false,
          style: {color: "#79aec8", weight: 1, fillColor: "#dfe9ee", fillOpacity: element.dataset.tiles ? 0 : 1},
        }).addTo(map).bringToBack();
        element.dataset.outlineDrawn = "true";
      });
    const markers = points.map(function (point) {
      return window.L.circleMarker([point.latitude, point.longitude], {
        radius: 6, weight: 1, color: "#333", fillColor: point.online ? "#2e7d32" : "#ba2121", fillOpacity: 0.85,
      }).bindPopup(popup(point, element.dataset.deviceUrl));
    });
    const group = window.L.featureGroup(markers).addTo(map);
    if (markers.length) {
      map.fitBounds(group.getBounds().pad(0.3), {maxZoom: 10});
    }
    element.dataset.markers = String(markers.length);
  }

  function drawWithin(root) {
    if (root.matches && root.matches("[data-device-map]")) {
      draw(root);
    }
    root.querySelectorAll("[data-device-map]").forEach(draw);
  }

  if (window.htmx) {
    window.htmx.onLoad(drawWithin);
  } else {
    document.addEventListener("DOMContentLoaded", function () { drawWithin(document); });
  }
})();
