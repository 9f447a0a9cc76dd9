/**
 * bench/chart.svg: state transitions per target against copy time, ours against the baseline, at one N.
 * Hand-written SVG: a linear time axis, a logarithmic transitions axis (the baseline grows with T, ours barely).
 */
export interface ChartPoint {
  copyMinutes: number;
  ours: number | null;
  baseline: number | null;
}

const W = 720;
const H = 420;
const M = { left: 70, right: 150, top: 50, bottom: 55 };
const SERIES = [
  { key: 'ours', label: 'ours', color: '#1f77b4' },
  { key: 'baseline', label: 'baseline (15 s polls)', color: '#d62728' },
] as const;

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const f = (v: number) => Number(v.toFixed(1));

export function chartSvg(points: readonly ChartPoint[], targets: number): string {
  const values = points.flatMap((p) => [p.ours, p.baseline]).filter((v): v is number => v !== null && v > 0);
  const maxT = Math.max(10, ...points.map((p) => p.copyMinutes));
  const lo = 10 ** Math.floor(Math.log10(Math.min(10, ...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(100, ...values)));
  const x = (t: number) => M.left + (t / maxT) * (W - M.left - M.right);
  const y = (v: number) => H - M.bottom - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - M.top - M.bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15">State transitions per target against copy time (N=${targets})</text>`,
  ];
  for (let e = Math.log10(lo); e <= Math.log10(hi); e += 1) {
    const v = 10 ** e;
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 8}" y="${f(y(v)) + 4}" text-anchor="end">${v.toLocaleString('en-US')}</text>`);
  }
  const step = maxT > 60 ? 20 : 10;
  for (let t = 0; t <= maxT; t += step) {
    out.push(`<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${M.top}" y2="${H - M.bottom}" stroke="#eee"/>`);
    out.push(`<text x="${f(x(t))}" y="${H - M.bottom + 18}" text-anchor="middle">${t}</text>`);
  }
  out.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#333"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 14}" text-anchor="middle">copy time T (simulated minutes)</text>`,
    `<text transform="translate(18 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">transitions per target (log scale)</text>`,
  );
  SERIES.forEach((series, i) => {
    const pts = points.flatMap((p) => {
      const v = p[series.key];
      return v !== null && v > 0 ? [[x(p.copyMinutes), y(v), v] as const] : [];
    });
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${series.color}" stroke-width="2" points="${pts.map(([a, b]) => `${f(a)},${f(b)}`).join(' ')}"/>`);
    for (const [a, b, v] of pts) {
      out.push(`<circle cx="${f(a)}" cy="${f(b)}" r="3.5" fill="${series.color}"><title>${esc(`${series.label}: ${v.toFixed(1)}`)}</title></circle>`);
      out.push(`<text x="${f(a)}" y="${f(b) - 8}" text-anchor="middle" font-size="10" fill="${series.color}">${Math.round(v)}</text>`);
    }
    const ly = M.top + 10 + i * 22;
    out.push(
      `<line x1="${W - M.right + 15}" x2="${W - M.right + 40}" y1="${ly}" y2="${ly}" stroke="${series.color}" stroke-width="2"/>`,
      `<text x="${W - M.right + 46}" y="${ly + 4}">${esc(series.label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
