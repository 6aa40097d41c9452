"""``report.html``: the go/no-go report as one self-contained page for a release reviewer.

One HTML5 file, no script, no external resource: the styles are inline and a
Content-Security-Policy of ``default-src 'none'`` forbids the browser any request, so the
page opens from CI's artifacts offline and shows the same thing everywhere. It holds:

- the go/no-go checklist (``gonogo.Item.to_json`` dicts, in order);
- each arch's time to ready (seconds), cold and under the CPU limit, beside the baseline's,
  as inline SVG bars;
- the readiness matrix (``Readiness``) as a grid: one row per pin, one cell per target,
  coloured by status, the cell's text (``Cell.text``) as its tooltip (``title``).

Every string from a run is HTML-escaped. The grid is a plain table (about 100 bytes per cell:
a 300-pin lock on 4 targets is about 125 KB).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape

from .bases.imagelock import Startup
from .wheelhouse.readiness import Readiness, Status

NAME = "report.html"
CSP = "default-src 'none'; style-src 'unsafe-inline'"
RESULT_MARK = {"pass": "✓", "fail": "✗", "n/a": "–"}
STATUS_CLASS = {Status.INDEX: "index", Status.BUILT: "built", Status.FAILED: "failed", Status.MISSING: "missing", Status.NOT_NEEDED: "na"}
STATUS_LABEL = {Status.INDEX: "wheel", Status.BUILT: "built", Status.FAILED: "failed", Status.MISSING: "missing", Status.NOT_NEEDED: "–"}
STATUS_MEANING = {
    Status.INDEX: "a wheel from the index",
    Status.BUILT: "built from its sdist",
    Status.FAILED: "its build failed",
    Status.MISSING: "no wheel, not built",
    Status.NOT_NEEDED: "not needed there (marker)",
}

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{margin:0 0 4px}h1.go{color:#1a7f37}h1.nogo{color:#cf222e}h2{margin:28px 0 8px;font-size:17px}
code{font:12px ui-monospace,monospace;background:#f3f4f6;padding:1px 4px;border-radius:3px}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
.checklist td.mark{font-weight:bold;text-align:center;width:1.5em}
tr.pass td.mark{color:#1a7f37}tr.fail td.mark{color:#cf222e}tr.n\\/a td.mark{color:#6e7781}
.grid{font-size:12px}.grid thead th{position:sticky;top:0;background:#f6f8fa}
.grid tbody th{font-weight:normal;white-space:nowrap}.grid td{text-align:center;min-width:5em;cursor:default}
.index{background:#dafbe1}.built{background:#ddf4ff}.failed{background:#ffc1c0;font-weight:bold}
.missing{background:#fff1b3;font-weight:bold}.na{background:#f6f8fa;color:#6e7781}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;border:1px solid #d0d7de}
.chart text{font:12px system-ui,sans-serif}.muted{color:#6e7781}
"""


def _checklist(items: Sequence[Mapping[str, str]]) -> str:
    rows = "".join(
        f'<tr class="{escape(i["result"])}"><td class="mark">{RESULT_MARK.get(i["result"], "?")}</td>'
        f"<td>{escape(i['title'])}</td><td>{escape(i['evidence'])}</td></tr>"
        for i in items
    )
    return f'<table class="checklist"><thead><tr><th></th><th>item</th><th>evidence</th></tr></thead><tbody>{rows}</tbody></table>'


def _bars(arch: str, now: Startup, before: Startup | None) -> str:
    """One arch's chart: bars of seconds to ready (median), cold and limited, now and baseline."""
    bars = [("cold", now.cold_median_s, "#0969da"), (f"at {now.cpus:g} CPU", now.limited_median_s, "#8250df")]
    if before is not None:
        bars += [("baseline cold", before.cold_median_s, "#8c959f"), (f"baseline at {before.cpus:g} CPU", before.limited_median_s, "#afb8c1")]
    top = max([s for _, s, _ in bars] + [0.001])
    width, label_w, row_h = 520, 150, 22
    body = []
    for n, (label, seconds, colour) in enumerate(bars):
        y = n * row_h
        w = (width - label_w - 70) * seconds / top
        body.append(
            f'<text x="0" y="{y + 15}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="14" fill="{colour}"></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{seconds:.2f} s</text>'
        )
    note = " (emulated: not gated)" if now.emulated else ""
    height = len(bars) * row_h + 4
    return (
        f"<h3>{escape(arch)}{escape(note)}</h3>"
        f'<svg class="chart" role="img" aria-label="time to ready, {escape(arch)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{"".join(body)}</svg>'
    )


def _grid(matrix: Readiness) -> str:
    counts = matrix.counts()

    def tally(target: str) -> str:
        c = counts.get(target) or Counter()
        return " · ".join(f"{c[s]} {STATUS_LABEL[s] if s is not Status.NOT_NEEDED else 'not needed'}" for s in Status if c.get(s))

    head = "".join(f'<th>{escape(t)}<br><span class="muted">{escape(tally(t))}</span></th>' for t in matrix.targets)
    rows = []
    for row in matrix.rows:
        cells = []
        for target in matrix.targets:
            cell = row.cells.get(target)
            if cell is None:
                cells.append('<td class="na" title="no cell">–</td>')
                continue
            tip = cell.text().replace("`", "").replace("**", "")
            cells.append(f'<td class="{STATUS_CLASS[cell.status]}" title="{escape(tip)}">{STATUS_LABEL[cell.status]}</td>')
        rows.append(f"<tr><th>{escape(row.name)}=={escape(row.version)}</th>{''.join(cells)}</tr>")
    legend = "".join(f'<span class="{STATUS_CLASS[s]}">{STATUS_LABEL[s]}: {escape(STATUS_MEANING[s])}</span>' for s in Status)
    return (
        f'<p class="legend">{legend}</p>'
        f'<table class="grid" data-pins="{len(matrix.rows)}" data-targets="{len(matrix.targets)}"><thead><tr><th>pin</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render(
    go: bool,
    index: str,
    items: Sequence[Mapping[str, str]],
    readiness: Readiness | None,
    startups: Sequence[tuple[str, Startup, Startup | None]],
) -> str:
    """The page (UTF-8 text). ``go`` and ``index`` head it; ``items`` the checklist as
    ``gonogo.Item.to_json`` dicts; ``readiness`` the wheelhouse's matrix (None: no grid, said
    so); ``startups`` (arch, this release's ``Startup``, the baseline's or None) per arch
    measured (empty: no chart, said so)."""
    verdict = "GO" if go else "NO-GO"
    charts = "".join(_bars(a, now, before) for a, now, before in startups) or (
        '<p class="muted">No time to ready measured: set [tool.factory.smoke] ready.</p>'
    )
    grid = (
        _grid(readiness)
        if readiness is not None
        else '<p class="muted">No readiness.json beside the wheelhouse: run <code>factory wheelhouse</code>.</p>'
    )
    pins = f"{len(readiness.rows)} pins × {len(readiness.targets)} targets" if readiness is not None else "no matrix"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>go/no-go: {verdict}</title><style>{STYLE}</style></head><body>"
        f'<h1 class="{"go" if go else "nogo"}">{verdict}</h1><p><code>{escape(index)}</code></p>'
        f"<h2>Checklist</h2>{_checklist(items)}"
        f"<h2>Time to ready</h2>{charts}"
        f"<h2>Readiness: {pins}</h2>{grid}"
        "</body></html>\n"
    )
