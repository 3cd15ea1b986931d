"""The review page's HTML, CSS and JavaScript (filled by `screen.build_screen_report` with the screen's data as JSON)."""

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.plate{border-collapse:collapse;margin:.5em 0} .plate td,.plate th{width:30px;height:22px;text-align:center;font-size:10px}
.plate td.well{border:1px solid #ccc;cursor:pointer} .plate td.hit{outline:3px solid #000;outline-offset:-3px}
.plate td.control{border:2px dashed #0072B2;color:#0072B2;font-weight:bold}
.plate td.suspect{outline:3px dotted #E69F00;outline-offset:-3px;color:#000;font-weight:bold}
.plate td.flagged:not(.hit){color:#E69F00;font-weight:bold} table.hits tbody tr{cursor:pointer}
.suspect-note{color:#a35f00;font-weight:bold}
.plate td.empty{background:#f4f4f4;cursor:default}
#panel{border:1px solid #bbb;padding:.8em;margin:1em 0;min-height:3em;background:#fafafa}
.cells{display:flex;flex-wrap:wrap;gap:8px} .cell{font-size:11px;text-align:center;width:96px}
.cell img{image-rendering:pixelated;width:80px;height:80px;border:1px solid #999} .cell img.has-field{cursor:zoom-in}
.field{position:relative;display:inline-block} .field img{display:block;max-width:640px;width:100%}
.field .box{position:absolute;outline:2px solid #ff0;box-shadow:0 0 0 1px #000}
table.hits{border-collapse:collapse;font-size:13px} table.hits th,table.hits td{border:1px solid #ccc;padding:3px 7px}
table.hits th{cursor:pointer;background:#eee} .scale{display:inline-block;width:180px;height:12px;vertical-align:middle;
background:linear-gradient(to right,#ffffff,#fdd49e,#fc8d59,#d7301f,#7f0000)}
button{margin:.3em .3em .3em 0}
</style></head><body>
<h1>Screen review</h1>
__INDEX__<p id="summary"></p>
<p>Colour: fraction of novel cells in the well <span class="scale"></span> <span id="scalemax"></span>
(a fixed scale: 3 novel cells of 20 are light, not dark). Black outline: hit; <span style="outline:3px dotted
#E69F00">dotted orange outline, "!"</span>: a hit on a well whose images fail QC (focus, intensity or saturation
outside the control wells' range): an artefact suspect; orange "q": a well that fails QC without being a hit;
<span style="border:2px dashed #0072B2;color:#0072B2">dashed blue, "c"</span>: control well. Click a well (or a
row of the hit table) to see its most novel and most confident cells.</p>
<div id="plates"></div>
<div id="panel">Click a well on a plate map.</div>
<h2>Hit wells</h2>
<button id="download-hits">Download hit list (CSV)</button>
<table class="hits" id="hits"><thead><tr>
<th data-key="plate">plate</th><th data-key="well">well</th><th data-key="cells">cells</th>
<th data-key="novel_fraction">novel fraction [95% CI]</th><th data-key="q_hit">q-value (__TEST__ test)</th>
<th data-key="suspect">artefact suspect</th><th data-key="top">top predicted classes</th><th data-key="treatment">
treatment</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const P = D.plate_column, W = D.well_column, S = D.summary, [PK, QK] = D.hit_columns;  // the hit test's p, q
const wells = D.wells.map(w => Object.assign({}, w, {
  plate: w[P], well: w[W], cells: +w.cells, novel_fraction: +w.novel_fraction, p_hit: +w[PK], q_hit: +w[QK],
  hit: w.hit === "True", top: topClasses(w), control: w.control === "True", flagged: w.qc_flag === "1",
  suspect: w.hit_artefact_suspect === "True", treatment: treatment(w)}));
const maxFraction = 0.5;  // fixed: the same colour means the same fraction on every plate and every screen
function treatment(w) {
  const keys = D.group_by ? [D.group_by] : Object.keys(w).filter(k => /^Metadata_(Treatment|Compound|Gene)/.test(k));
  return keys.filter(k => w[k] !== undefined).map(k => w[k]).join(", ");
}
function topClasses(w) {
  return Object.keys(w).filter(k => k.startsWith("frac_")).map(k => [k.slice(5), +w[k]])
    .sort((a, b) => b[1] - a[1]).slice(0, 3).map(([c, f]) => c + " " + (100 * f).toFixed(0) + "%").join(", ");
}
function colour(f) {
  const t = Math.min(1, f / maxFraction), stops = [[255,255,255],[253,212,158],[252,141,89],[215,48,31],[127,0,0]];
  const x = t * (stops.length - 1), i = Math.min(stops.length - 2, Math.floor(x)), u = x - i;
  const c = stops[i].map((v, j) => Math.round(v + u * (stops[i + 1][j] - v)));
  return "rgb(" + c.join(",") + ")";
}
function position(name) {
  const m = /^\s*([A-Za-z]{1,2})\s*0*(\d{1,2})\s*$/.exec(name);
  if (!m) return null;
  const L = m[1].toUpperCase();
  const row = L.length === 1 ? L.charCodeAt(0) - 65 : 26 * (L.charCodeAt(0) - 64) + L.charCodeAt(1) - 65;
  return [row, +m[2] - 1];
}
function rowName(r) { return r < 26 ? String.fromCharCode(65 + r) : String.fromCharCode(64 + Math.floor(r / 26)) + String.fromCharCode(65 + r % 26); }
function drawPlates() {
  const host = document.getElementById("plates");
  for (const plate of [...new Set(wells.map(w => w.plate))]) {
    const mine = wells.filter(w => w.plate === plate), at = {};
    let rows = 8, cols = 12;
    if (S.plate_layout) { rows = S.plate_layout.rows; cols = S.plate_layout.columns; }  // screens since 0.2: decided once
    for (const w of mine) {
      const p = position(w.well);
      if (!p) continue;
      at[p[0] + "," + p[1]] = w;
      if (S.plate_layout) continue;
      if (p[0] >= 8 || p[1] >= 12) { rows = 16; cols = 24; }
      if (p[0] >= 16 || p[1] >= 24) { rows = 32; cols = 48; }
    }
    const h = document.createElement("h2");
    const hits = mine.filter(w => w.hit).length;
    const info = (S.plates || []).find(x => String(x[P]) === String(plate)) || {};
    h.textContent = "Plate " + plate + ": " + mine.length + " wells, " + hits + " hits" + powerText(info);
    host.appendChild(h);
    const t = document.createElement("table");
    t.className = "plate"; t.dataset.plate = plate;
    let head = "<tr><th></th>";
    for (let c = 0; c < cols; c++) head += "<th>" + (c + 1) + "</th>";
    t.insertAdjacentHTML("beforeend", head + "</tr>");
    for (let r = 0; r < rows; r++) {
      const tr = document.createElement("tr");
      tr.insertAdjacentHTML("beforeend", "<th>" + rowName(r) + "</th>");
      for (let c = 0; c < cols; c++) {
        const td = document.createElement("td"), w = at[r + "," + c];
        if (w) {
          td.className = "well" + (w.hit ? " hit" : "") + (w.control ? " control" : "") + (w.suspect ? " suspect" : "") +
            (w.flagged ? " flagged" : "");
          td.style.background = colour(w.novel_fraction);
          td.textContent = w.suspect ? "!" : w.control ? "c" : w.flagged ? "q" : "";
          td.dataset.well = w.well;
          td.title = w.well + ": " + w.cells + " cells, novel " + (100 * w.novel_fraction).toFixed(1) + "%, q " + w.q_hit.toPrecision(2);
          td.addEventListener("click", () => showWell(plate, w.well));
        } else td.className = "empty";
        tr.appendChild(td);
      }
      t.appendChild(tr);
    }
    host.appendChild(t);
    const odd = mine.filter(w => !position(w.well));
    if (odd.length) host.insertAdjacentHTML("beforeend", "<p>Wells without a plate position: " + odd.map(w => w.well).join(", ") + "</p>");
  }
}
function powerText(info) {
  if (info.median_cells === undefined) return "";
  if (D.test === "rank" || D.test === "wellrank") return "; power not estimated for the " + D.test + " test (no count model)";
  if (info.detectable_fraction === null) return "; " + info.median_cells + " cells per well (median) are too few for " +
    "the " + D.test + " test to call a well with 80% power";
  return "; power: at the median " + info.median_cells + " cells per well, a well is called with 80% power when " +
    (100 * info.detectable_fraction).toFixed(1) + "% of its cells pass the threshold beyond the controls' rate";
}
function cellHtml(c) {
  const f = D.fields[String(c.index)];
  return '<div class="cell"><img alt="cell ' + c.index + '" src="' + D.thumbs[String(c.index)] + '"' +
    (f ? ' class="has-field" data-cell="' + c.index + '" title="click: the cell in its field"' : "") + "><br>" +
    esc(c.pred) + "<br>" + S.score + " " + num(c.score) + "</div>";
}
function showField(index) {
  const [src, x, y, w, h] = D.fields[String(index)], pc = v => (100 * v).toFixed(3) + "%";
  document.getElementById("field-view").innerHTML = "<h3>Cell " + esc(index) + " in its field</h3>" +
    "<div class='field'><img id='field-image' alt='field' src='" + esc(src) + "'><div class='box' id='field-box' " +
    "style='left:" + pc(x) + ";top:" + pc(y) + ";width:" + pc(w) + ";height:" + pc(h) + "'></div></div>";
}
function num(v) { return typeof v === "number" ? v.toPrecision(3) : String(v); }
function esc(s) { return String(s).replace(/[&<>"]/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[ch])); }
function showWell(plate, well) {
  const w = wells.find(x => x.plate === plate && x.well === well), p = (D.picks[plate] || {})[well] || {novel: [], confident: []};
  const panel = document.getElementById("panel");
  panel.innerHTML = "<h2 id='well-title'>Plate " + esc(plate) + ", well " + esc(well) + (w.hit ? " (hit)" : "") + "</h2>" +
    "<p>" + w.cells + " cells, " + w.novel + " novel: " + (100 * w.novel_fraction).toFixed(1) + "% [" +
    (100 * +w.ci_low).toFixed(1) + "%, " + (100 * +w.ci_high).toFixed(1) + "%], p " + w.p_hit.toPrecision(2) +
    ", q " + w.q_hit.toPrecision(2) + " (" + esc(D.test) + " test); predicted: " + esc(w.top) + "</p>" +
    (w.suspect ? "<p class='suspect-note'>Artefact suspect: a hit on a well whose images fail QC.</p>" : "") +
    qcHtml(w) + metaHtml(w) +
    (D.legend ? "<p>Colours: " + esc(D.legend) + "</p>" : "") +
    "<h3>Most novel cells</h3><div class='cells' id='novel-cells'>" + p.novel.map(cellHtml).join("") + "</div>" +
    "<h3>Most confident cells</h3><div class='cells'>" + p.confident.map(cellHtml).join("") + "</div>" +
    "<div id='field-view'></div><button id='download-well'>Download this well's cells (CSV)</button>";
  panel.querySelectorAll("img.has-field").forEach(img => img.addEventListener("click", () => showField(img.dataset.cell)));
  document.getElementById("download-well").addEventListener("click", () => {
    const listed = D.cells && D.cells[plate] && D.cells[plate][well];
    const rows = listed ? listed : p.novel.concat(p.confident).map(c => [c.id, c.pred, c.score, ""]);
    download(plate + "_" + well + "_cells.csv", [["id", "predicted", S.score, "novel"]].concat(rows));
  });
}
function qcHtml(w) {
  const keys = Object.keys(w).filter(k => k.startsWith("qc_") && k !== "qc_flag");
  if (!keys.length) return "";
  return "<p id='well-qc'>QC" + (w.flagged ? " (outside the control wells' range)" : " (within the control wells' range)") +
    ": " + keys.map(k => esc(k.slice(3)) + " " + num(+w[k])).join(", ") + "</p>";
}
function metaHtml(w) {
  const keys = Object.keys(w).filter(k => k.startsWith("Metadata_") && k !== P && k !== W);
  return keys.length ? "<p id='well-metadata'>" + keys.map(k => esc(k.slice(9)) + ": " + esc(w[k])).join("; ") + "</p>" : "";
}
function csvLine(r) { return r.map(v => /[",\n]/.test(String(v)) ? '"' + String(v).replace(/"/g, '""') + '"' : String(v)).join(","); }
function download(name, rows) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([rows.map(csvLine).join("\n") + "\n"], {type: "text/csv"}));
  a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
}
let sortKey = "q_hit", ascending = true;
function drawHits() {
  const hits = wells.filter(w => w.hit).sort((a, b) => {
    const x = a[sortKey], y = b[sortKey];
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
  });
  document.querySelector("#hits tbody").innerHTML = hits.map(w => "<tr data-plate='" + esc(w.plate) + "' data-well='" +
    esc(w.well) + "'><td>" + esc(w.plate) + "</td><td>" + esc(w.well) +
    "</td><td>" + w.cells + "</td><td>" + (100 * w.novel_fraction).toFixed(1) + "% [" + (100 * +w.ci_low).toFixed(1) + "%, " +
    (100 * +w.ci_high).toFixed(1) + "%]</td><td>" + w.q_hit.toPrecision(2) + "</td><td>" + (w.suspect ? "yes" : "") +
    "</td><td>" + esc(w.top) + "</td><td>" + esc(w.treatment) + "</td></tr>").join("");
  document.querySelectorAll("#hits tbody tr").forEach(tr => tr.addEventListener("click", () => {
    showWell(tr.dataset.plate, tr.dataset.well);
    document.getElementById("panel").scrollIntoView();
  }));
}
document.querySelectorAll("#hits th").forEach(th => th.addEventListener("click", () => {
  const key = th.dataset.key;
  ascending = key === sortKey ? !ascending : true;
  sortKey = key;
  drawHits();
}));
document.getElementById("download-hits").addEventListener("click", () => download("hits.csv",
  [["plate", "well", "cells", "novel", "novel_fraction", "ci_low", "ci_high", PK, QK, "hit_artefact_suspect", "top_classes",
    "treatment"]].concat(wells.filter(w => w.hit).map(w => [w.plate, w.well, w.cells, w.novel, w.novel_fraction, w.ci_low,
    w.ci_high, w[PK], w[QK], w.suspect, w.top, w.treatment]))));
document.getElementById("summary").textContent = S.cells + " cells in " + S.wells + " wells; a cell is novel when its " +
  S.score + " (higher = more novel) is above its plate's threshold, set so that a fraction " + S.fpr +
  " of known cells is flagged; " + S.hits + " hit wells at a false discovery rate of " + S.fdr + " by the " + D.test +
  " test" + (wells.some(w => w.suspect) ? ", " + wells.filter(w => w.suspect).length + " of them artefact suspects" : "") + ".";
document.getElementById("scalemax").textContent = "0 to " + (100 * maxFraction).toFixed(0) + "% and above";
drawPlates();
drawHits();
</script></body></html>
"""
