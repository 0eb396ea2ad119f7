import type { TopLevelSpec } from 'vega-lite';
import sharp from 'sharp';

export type { TopLevelSpec } from 'vega-lite';

export interface RenderedChart {
  /** Standalone SVG markup, inlined into report.html. */
  svg: string;
  /** The same chart as PNG at `scale` times the SVG size, for people who open the files directly. */
  png: Buffer;
  width: number;
  height: number;
}

/** Shared look: system sans fonts (DejaVu/Liberation on Debian) so the PNG rasterizer finds them. */
export const CHART_CONFIG = {
  font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 14, anchor: 'start' as const, offset: 10 },
};

/**
 * Vega-Lite -> Vega -> SVG without a browser or canvas (renderer 'none' only builds the
 * scenegraph), then librsvg (inside sharp) rasterizes the SVG. librsvg needs at least one font
 * known to fontconfig, or every label comes out blank: on Debian, fonts-dejavu-core.
 */
export async function renderVegaLite(spec: TopLevelSpec, scale = 2): Promise<RenderedChart> {
  const withConfig = { ...spec, config: { ...CHART_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec;
  // Loaded on first use: vega and vega-lite take a few hundred ms to load, and only reports draw.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(withConfig).spec), { renderer: 'none', logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    const image = sharp(Buffer.from(svg), { density: 72 * scale });
    const png = await image.png().toBuffer();
    const { width, height } = svgSize(svg);
    return { svg, png, width, height };
  } finally {
    view.finalize();
  }
}

function svgSize(svg: string): { width: number; height: number } {
  const match = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  return { width: Number(match?.[1] ?? 0), height: Number(match?.[2] ?? 0) };
}
