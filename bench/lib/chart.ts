import { PNG } from 'pngjs';
import type { Latency } from './stats.js';

/**
 * The benchmark chart as a PNG, drawn with pngjs and a built-in 5×7 pixel font (no system fonts or native
 * canvas needed): per row, throughput as a bar, and latency percentiles (p50, p99, p99.9) on a log scale.
 */

const FONT: Record<string, number[]> = {
  A: [14, 17, 17, 31, 17, 17, 17],
  B: [30, 17, 17, 30, 17, 17, 30],
  C: [14, 17, 16, 16, 16, 17, 14],
  D: [30, 17, 17, 17, 17, 17, 30],
  E: [31, 16, 16, 30, 16, 16, 31],
  F: [31, 16, 16, 30, 16, 16, 16],
  G: [14, 17, 16, 23, 17, 17, 15],
  H: [17, 17, 17, 31, 17, 17, 17],
  I: [14, 4, 4, 4, 4, 4, 14],
  J: [7, 2, 2, 2, 2, 18, 12],
  K: [17, 18, 20, 24, 20, 18, 17],
  L: [16, 16, 16, 16, 16, 16, 31],
  M: [17, 27, 21, 21, 17, 17, 17],
  N: [17, 17, 25, 21, 19, 17, 17],
  O: [14, 17, 17, 17, 17, 17, 14],
  P: [30, 17, 17, 30, 16, 16, 16],
  Q: [14, 17, 17, 17, 21, 18, 13],
  R: [30, 17, 17, 30, 20, 18, 17],
  S: [15, 16, 16, 14, 1, 1, 30],
  T: [31, 4, 4, 4, 4, 4, 4],
  U: [17, 17, 17, 17, 17, 17, 14],
  V: [17, 17, 17, 17, 17, 10, 4],
  W: [17, 17, 17, 21, 21, 21, 10],
  X: [17, 17, 10, 4, 10, 17, 17],
  Y: [17, 17, 10, 4, 4, 4, 4],
  Z: [31, 1, 2, 4, 8, 16, 31],
  '0': [14, 17, 19, 21, 25, 17, 14],
  '1': [4, 12, 4, 4, 4, 4, 14],
  '2': [14, 17, 1, 2, 4, 8, 31],
  '3': [31, 2, 4, 2, 1, 17, 14],
  '4': [2, 6, 10, 18, 31, 2, 2],
  '5': [31, 16, 30, 1, 1, 17, 14],
  '6': [6, 8, 16, 30, 17, 17, 14],
  '7': [31, 1, 2, 4, 8, 8, 8],
  '8': [14, 17, 17, 14, 17, 17, 14],
  '9': [14, 17, 17, 15, 1, 2, 12],
  ' ': [0, 0, 0, 0, 0, 0, 0],
  '-': [0, 0, 0, 31, 0, 0, 0],
  '.': [0, 0, 0, 0, 0, 12, 12],
  '/': [1, 1, 2, 4, 8, 16, 16],
  ':': [0, 12, 12, 0, 12, 12, 0],
  '+': [0, 4, 4, 31, 4, 4, 0],
  '%': [24, 25, 2, 4, 8, 19, 3],
  '(': [2, 4, 8, 8, 8, 4, 2],
  ')': [8, 4, 2, 2, 2, 4, 8],
  '>': [8, 4, 2, 1, 2, 4, 8],
  '=': [0, 0, 31, 0, 31, 0, 0],
  ',': [0, 0, 0, 0, 12, 4, 8],
};

type RGB = [number, number, number];

class Canvas {
  readonly png: PNG;
  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.png = new PNG({ width, height });
    this.rect(0, 0, width, height, [255, 255, 255]);
  }
  rect(x: number, y: number, w: number, h: number, c: RGB): void {
    for (let j = Math.max(0, y); j < Math.min(this.height, y + h); j++) {
      for (let i = Math.max(0, x); i < Math.min(this.width, x + w); i++) {
        const o = (j * this.width + i) * 4;
        this.png.data[o] = c[0];
        this.png.data[o + 1] = c[1];
        this.png.data[o + 2] = c[2];
        this.png.data[o + 3] = 255;
      }
    }
  }
  text(x: number, y: number, s: string, c: RGB = [20, 20, 20], scale = 1): void {
    let cx = x;
    for (const ch of s.toUpperCase()) {
      const glyph = FONT[ch] ?? FONT[' ']!;
      glyph.forEach((row, j) => {
        for (let i = 0; i < 5; i++) if (row & (1 << (4 - i))) this.rect(cx + i * scale, y + j * scale, scale, scale, c);
      });
      cx += 6 * scale;
    }
  }
}

export interface ChartRow {
  scenario: string;
  case: string;
  throughput: number | null;
  unit: string;
  latency?: Latency | undefined;
  e2e?: Latency | undefined;
}

export function drawChart(rows: ChartRow[], title: string): Buffer {
  const rowH = 24;
  const top = 70;
  const width = 1400;
  const c = new Canvas(width, top + rows.length * rowH + 40);
  c.text(20, 16, title, [0, 0, 0], 2);
  const labelW = 360;
  const barX = labelW + 10;
  const barW = 420;
  const latX = barX + barW + 190;
  const latW = width - latX - 20;
  c.text(barX, 50, 'THROUGHPUT (PER SECOND)');
  c.text(latX, 50, 'LATENCY MS, LOG SCALE 0.1-10000: P50 P99 P99.9');
  const maxT = Math.max(1, ...rows.map((r) => r.throughput ?? 0));
  const logX = (ms: number) => Math.round(((Math.log10(Math.max(0.1, Math.min(10_000, ms))) + 1) / 5) * latW);
  for (const ms of [0.1, 1, 10, 100, 1000, 10_000]) c.rect(latX + logX(ms), top - 6, 1, rows.length * rowH + 6, [220, 220, 220]);
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    if (i % 2 === 0) c.rect(0, y - 3, width, rowH, [245, 247, 250]);
    c.text(20, y + 4, `${r.scenario} ${r.case}`.slice(0, 58));
    const t = r.throughput ?? 0;
    c.rect(barX, y, Math.max(1, Math.round((t / maxT) * barW)), rowH - 8, [66, 133, 244]);
    c.text(barX + barW + 8, y + 4, `${t} ${r.unit}`.slice(0, 30));
    const l = r.e2e && r.e2e.count ? r.e2e : r.latency;
    if (l && l.count) {
      const colors: RGB[] = [
        [52, 168, 83],
        [251, 188, 5],
        [234, 67, 53],
      ];
      [l.p50, l.p99, l.p999].forEach((v, k) => c.rect(latX, y + k * 5, Math.max(1, logX(v)), 4, colors[k]!));
      c.text(latX + Math.min(latW - 150, logX(l.p999) + 6), y + 4, `${l.p99.toFixed(1)} P99`);
    }
  });
  return PNG.sync.write(c.png);
}
