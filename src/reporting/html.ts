/** Building blocks of the self-contained report page: escaped text, tables, figures, CSS. */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export type Cell = string | number | { html: string; className?: string; style?: string };

function cellHtml(cell: Cell, tag: 'td' | 'th'): string {
  if (typeof cell === 'number') return `<${tag} class="num">${escapeHtml(String(cell))}</${tag}>`;
  if (typeof cell === 'string') return `<${tag}>${escapeHtml(cell)}</${tag}>`;
  const cls = cell.className ? ` class="${cell.className}"` : '';
  const style = cell.style ? ` style="${cell.style}"` : '';
  return `<${tag}${cls}${style}>${cell.html}</${tag}>`;
}

export interface TableOptions {
  className?: string;
  /** The first cell of each row is a header (key/value tables). */
  rowHeaders?: boolean;
  /** Extra class of the i-th row (e.g. summary rows). */
  rowClass?: (index: number) => string | undefined;
}

/** An HTML table; no <thead> when `headers` is empty. */
export function table(headers: Cell[], rows: Cell[][], opts: TableOptions = {}): string {
  const head = headers.length ? `<thead><tr>${headers.map((h) => cellHtml(h, 'th')).join('')}</tr></thead>` : '';
  const row = (r: Cell[], i: number) => {
    const cls = opts.rowClass?.(i);
    const cells = r.map((c, j) => cellHtml(c, opts.rowHeaders && j === 0 ? 'th' : 'td')).join('');
    return `<tr${cls ? ` class="${cls}"` : ''}>${cells}</tr>`;
  };
  return `<table class="${opts.className ?? ''}">${head}<tbody>${rows.map(row).join('\n')}</tbody></table>`;
}

/** A right-aligned header cell for a numeric column. */
export function numHeader(text: string): Cell {
  return { html: escapeHtml(text), className: 'num' };
}

/** A number cell shaded from red (0) to green (1), so weak classes stand out in long tables. */
export function scoreCell(value: number, digits = 3): Cell {
  const hue = Math.round(Math.max(0, Math.min(1, value)) * 120);
  return { html: value.toFixed(digits), className: 'num', style: `background:hsl(${hue},70%,92%)` };
}

export interface FigureImage {
  /** Stable name, also the PNG file name stem. */
  name: string;
  caption: string;
  mime: 'image/svg+xml' | 'image/png';
  data: Buffer | string;
  width: number;
  height: number;
}

/**
 * Each figure is an <img> with a data URI: the page needs no network and no other file, and
 * SVGs stay isolated from each other (Vega reuses clip-path ids, which would clash inline).
 */
export function figure(f: FigureImage): string {
  const b64 = Buffer.isBuffer(f.data) ? f.data.toString('base64') : Buffer.from(f.data, 'utf8').toString('base64');
  return `<figure class="figure" data-figure="${escapeHtml(f.name)}">
<img src="data:${f.mime};base64,${b64}" width="${Math.round(f.width)}" height="${Math.round(f.height)}" alt="${escapeHtml(f.caption)}">
<figcaption>${escapeHtml(f.caption)} <a class="png" href="${escapeHtml(f.name)}.png">${escapeHtml(f.name)}.png</a></figcaption>
</figure>`;
}

export function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>\n${body}\n</section>`;
}

const CSS = `
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1d1d1f; margin: 0; background: #f6f7f9; }
header { background: #1d2633; color: #fff; padding: 22px 32px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header .sub { color: #c7d0dc; font-size: 13px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 48px; }
section { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 16px 22px; margin: 18px 0; overflow-x: auto; }
h2 { font-size: 18px; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 18px 0 0; }
.card { background: #fff; border: 1px solid #e2e5ea; border-radius: 8px; padding: 10px 16px; min-width: 130px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { font-size: 12px; color: #5f6b7a; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eceef2; text-align: left; vertical-align: top; }
thead th { background: #f1f3f6; position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:hover { background: #f8fafc; }
table.facts th { color: #5f6b7a; font-weight: 500; white-space: nowrap; }
table.facts td { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; word-break: break-all; }
tr.avg td { font-weight: 600; border-top: 2px solid #d5d9e0; }
figure { margin: 8px 0; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #5f6b7a; margin-top: 4px; }
.columns { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
.note { color: #5f6b7a; font-size: 13px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
`;

export function page(title: string, subtitle: string, cards: [string, string][], sections: string[]): string {
  const cardHtml = cards
    .map(([k, v]) => `<div class="card"><div class="v">${escapeHtml(v)}</div><div class="k">${escapeHtml(k)}</div></div>`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><div class="sub">${escapeHtml(subtitle)}</div></header>
<main>
<div class="cards">${cardHtml}</div>
${sections.join('\n')}
</main>
</body>
</html>
`;
}
