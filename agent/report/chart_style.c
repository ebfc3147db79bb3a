/*
 * chart_style.c - the look shared by `canaryd report` and the live status
 * page (agent/report/chart.h): one stylesheet and the SVG definitions the charts
 * refer to, compiled in so both documents stay self-contained.
 *
 * Colours: canary orange, stable blue, the threshold dashed red, pending
 * amber and firing red as translucent spans, short of data a grey hatch;
 * verdict colours as in `canaryd tail` (ROLLBACK red, ALERT orange,
 * HEALTHY green, PROMOTE blue, ANALYZING grey). Under 600 px (a phone) the
 * type grows so that a chart scaled to the screen stays legible.
 */
#include "chart.h"

const char cd_chart_defs[] =
    "<svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\"><defs><pattern id=\"hatch\" "
    "width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
    "patternTransform=\"rotate(45)\"><line "
    "x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" class=\"hatch\"/></pattern></defs></svg>";

const char cd_chart_css[] =
    ":root{--fg:#1d2330;--muted:#5b6475;--bg:#fff;--panel:#f6f7f9;--line:#dfe3ea;"
    "--canary:#e8590c;--stable:#3b5bdb;--thr:#c92a2a;--pending:rgba(250,176,5,.22);"
    "--firing:rgba(240,62,62,.2);--ok:#2b8a3e;--promote:#1971c2;--bad:#c92a2a;--alert:#e67700;"
    "--grey:#868e96}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe "
    "UI',Roboto,sans-serif;color:var(--fg);"
    "background:var(--bg)}"
    "main{max-width:1100px;margin:0 auto;padding:16px}"
    "header.top{display:flex;flex-wrap:wrap;align-items:baseline;gap:8px 24px;margin-bottom:8px}"
    "h1{font-size:20px;margin:0}h2{font-size:16px;margin:0 0 2px;display:flex;flex-wrap:wrap;"
    "align-items:center;gap:6px}"
    ".verdict-big{font-size:44px;font-weight:800;letter-spacing:.02em;line-height:1.1}"
    ".v-ANALYZING{color:var(--grey)}.v-HEALTHY{color:var(--ok)}.v-PROMOTE{color:var(--promote)}"
    ".v-ROLLBACK{color:var(--bad)}.v-ALERT{color:var(--alert)}"
    ".facts{display:flex;flex-wrap:wrap;gap:4px 18px;color:var(--muted)}.facts b{color:var(--fg)}"
    "section.rule,section.timeline,section.summary{background:var(--panel);border:1px solid "
    "var(--line);"
    "border-radius:8px;padding:10px 12px;margin:12px 0}"
    "svg{width:100%;height:auto;display:block}svg.defs{position:absolute;width:0;height:0}"
    ".plot{fill:#fff;stroke:var(--line)}.grid{stroke:#edf0f4}"
    ".tick,.axis-label{font-size:11px;fill:var(--muted)}"
    ".series{fill:none;stroke-width:1.8;stroke-linejoin:round}"
    ".series.canary{stroke:var(--canary);stroke-width:2.2}.series.stable{stroke:var(--stable)}"
    ".series.threshold{stroke:var(--thr);stroke-dasharray:6 4}"
    ".series.compared{stroke:var(--canary);stroke-dasharray:2 3;opacity:.8}"
    ".band{fill:rgba(201,42,42,.10);stroke:none}"
    ".span.pending{fill:var(--pending)}.span.firing{fill:var(--firing)}"
    ".short rect{fill:url(#hatch);opacity:.55}.hatch{stroke:#adb5bd;stroke-width:2}"
    ".short-label{font-size:11px;fill:var(--muted)}"
    ".mark.verdict line{stroke:var(--bad);stroke-width:2}.mark.verdict text{font-size:12px;"
    "font-weight:700;fill:var(--bad);paint-order:stroke;stroke:#fff;stroke-width:3px}.mark.m-ALERT "
    "line{stroke:var(--alert)}"
    ".mark.m-ALERT text{fill:var(--alert)}.mark.state path{fill:var(--muted)}"
    ".mark.m-firing path{fill:var(--bad)}.mark.m-pending path{fill:#f08c00}"
    ".seg{stroke:#fff}.seg.v-ANALYZING{fill:#ced4da}.seg.v-HEALTHY{fill:#8ce99a}"
    ".seg.v-PROMOTE{fill:#74c0fc}.seg.v-ROLLBACK{fill:#ff8787}.seg.v-ALERT{fill:#ffc078}"
    ".seg-label{font-size:12px;font-weight:600;fill:#212529}"
    ".tl-mark line{stroke:var(--bad);stroke-width:2}.tl-mark.m-ALERT line{stroke:var(--alert)}"
    ".sequence{margin:4px 0 0;font-weight:600}.sequence span{font-weight:700}"
    ".tag{font-size:11px;font-weight:600;border:1px solid var(--line);border-radius:10px;"
    "padding:0 7px;color:var(--muted);background:#fff}.tag.a-rollback{color:var(--bad)}"
    ".tag.a-alert{color:var(--alert)}"
    ".now{font-size:12px;font-weight:700;text-transform:uppercase}.s-firing{color:var(--bad)}"
    ".s-pending{color:#f08c00}.s-inactive,.s-resolved{color:var(--ok)}"
    ".nowval{font-size:12px;color:var(--muted);font-weight:400}"
    ".rule-def{margin:0 0 6px;color:var(--muted);font-size:13px}"
    ".legend{margin:4px 0 0;font-size:12px;color:var(--muted)}"
    ".k{display:inline-block;width:14px;height:10px;margin:0 4px 0 10px;vertical-align:middle;"
    "border-radius:2px}.k.canary{background:var(--canary)}.k.stable{background:var(--stable)}"
    ".k.threshold{background:repeating-linear-gradient(90deg,var(--thr) 0 5px,transparent 5px 8px);"
    "height:3px}.k.compared{background:repeating-linear-gradient(90deg,var(--canary) 0 "
    "2px,transparent 2px 4px);height:3px}"
    ".k.band{background:rgba(201,42,42,.18)}.k.pending{background:var(--pending)}"
    ".k.firing{background:var(--firing)}.k.short{background:repeating-linear-gradient(45deg,#"
    "adb5bd 0 2px,transparent 2px 5px)}"
    "ol.records{margin:6px 0 0;padding-left:18px;font-size:12.5px;color:var(--muted)}"
    "ol.records li{margin:2px 0}ol.records time{font-variant-numeric:tabular-nums;color:var(--fg)}"
    ".v-ROLLBACK,.s-firing{font-weight:700}"
    "table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}"
    "td,th{padding:2px 12px 2px 0;text-align:right}td:first-child,th:first-child{text-align:left}"
    ".summary .cols{display:flex;flex-wrap:wrap;gap:8px 40px;align-items:flex-start}"
    ".empty{fill:var(--muted);font-size:14px}"
    "@media (max-width:600px){main{padding:8px}.verdict-big{font-size:36px}"
    ".chart-wrap{overflow-x:auto}svg.chart,svg.timeline{min-width:720px}.tick{font-size:14px}"
    ".nowval{display:block;width:100%}}";
