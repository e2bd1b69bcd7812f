/**
 * `npm run bench:auto`: --concurrency auto against a sweep of fixed values
 * (1, 2, 4 … 64) on three servers, each in its own process: the reference
 * server with builtin:synthetic (capacity set by CPU), a server that
 * answers 429 above 8 in flight (a hard limit), and the sink (no limit but
 * the machine). Each setting runs three times and the median run (by
 * files/s) stands for it, since one run of a few seconds on a shared
 * machine can be off by several percent. Prints files/s, p95 and the 429s
 * met (as retries) per setting, auto's share of the best fixed value, and
 * writes docs/bench-auto.svg.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCorpus, makeJpegSet } from './corpus.js';
import { pushWithCli, ROOT, startScript, startServe, type PushRun, type Started } from './processes.js';

const FIXED = [1, 2, 4, 8, 16, 32, 64];
const RUNS = 3;

interface Target {
  readonly name: string;
  readonly start: () => Promise<Started>;
  readonly path: string;
  readonly files: string;
}

interface Sweep {
  readonly target: string;
  readonly fixed: ReadonlyArray<readonly [number, PushRun]>;
  readonly auto: PushRun;
}

/** Enough retries, quickly, that a 429 costs a retry and not a file. */
const PATIENT = ['--retries', '100', '--retry-min-delay', '1ms', '--retry-max-delay', '10ms'];

/** The median of RUNS runs by files/s. */
async function medianRun(args: string[]): Promise<PushRun> {
  const runs: PushRun[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await pushWithCli(args));
  return runs.sort((a, b) => a.filesPerSecond - b.filesPerSecond)[Math.floor(RUNS / 2)] as PushRun;
}

async function sweep(target: Target): Promise<Sweep> {
  const server = await target.start();
  try {
    const url = `${server.url}${target.path}`;
    const fixed: Array<readonly [number, PushRun]> = [];
    for (const concurrency of FIXED) fixed.push([concurrency, await medianRun([target.files, '--url', url, '--concurrency', String(concurrency), ...PATIENT])]);
    const auto = await medianRun([target.files, '--url', url, '--concurrency', 'auto', '--max-concurrency', '64', ...PATIENT]);
    return { target: target.name, fixed, auto };
  } finally {
    server.stop();
  }
}

function table(sweeps: readonly Sweep[]): string {
  const rows = ['| server | concurrency | files/s | p95 ms | 429s (retries) |', '|---|---:|---:|---:|---:|'];
  for (const { target, fixed, auto } of sweeps) {
    for (const [concurrency, run] of fixed) rows.push(`| ${target} | ${concurrency} | ${run.filesPerSecond.toFixed(0)} | ${run.latencyMs.p95} | ${run.retries} |`);
    const share = (runs: ReadonlyArray<readonly [number, PushRun]>) => `${((auto.filesPerSecond / Math.max(...runs.map(([, run]) => run.filesPerSecond))) * 100).toFixed(0)} %`;
    // Where sending more than the server takes pays (its refusals are a queue), the best fixed value is not the best polite one.
    const polite = fixed.filter(([, run]) => run.retries === 0);
    const versus = polite.length === fixed.length ? `${share(fixed)} of the best fixed` : `${share(fixed)} of the best fixed, ${share(polite)} of the best never refused`;
    const { final, min, max } = auto.concurrency;
    rows.push(`| ${target} | **auto** (${min}–${max}, ended at ${final}) | **${auto.filesPerSecond.toFixed(0)}** (${versus}) | ${auto.latencyMs.p95} | ${auto.retries} |`);
  }
  return rows.join('\n');
}

/** One panel per server: files/s (blue) and p95 (orange, its own scale) against concurrency on a log scale; auto as dashed lines. */
function chart(sweeps: readonly Sweep[]): string {
  const width = 320;
  const height = 240;
  const pad = { left: 50, right: 45, top: 30, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (concurrency: number) => pad.left + (Math.log2(concurrency) / 6) * plotW;
  const panels = sweeps.map((sweep, index) => {
    const maxRate = Math.max(sweep.auto.filesPerSecond, ...sweep.fixed.map(([, run]) => run.filesPerSecond)) * 1.1;
    const maxP95 = Math.max(sweep.auto.latencyMs.p95, ...sweep.fixed.map(([, run]) => run.latencyMs.p95)) * 1.1;
    const yRate = (value: number) => pad.top + plotH - (value / maxRate) * plotH;
    const yP95 = (value: number) => pad.top + plotH - (value / maxP95) * plotH;
    const rate = sweep.fixed.map(([c, run]) => `${x(c).toFixed(1)},${yRate(run.filesPerSecond).toFixed(1)}`).join(' ');
    const p95 = sweep.fixed.map(([c, run]) => `${x(c).toFixed(1)},${yP95(run.latencyMs.p95).toFixed(1)}`).join(' ');
    const ticks = FIXED.map((c) => `<text x="${x(c).toFixed(1)}" y="${height - pad.bottom + 16}" text-anchor="middle">${c}</text>`).join('');
    const autoRate = yRate(sweep.auto.filesPerSecond).toFixed(1);
    const autoP95 = yP95(sweep.auto.latencyMs.p95).toFixed(1);
    return `<g transform="translate(${index * width},0)">
  <text x="${width / 2}" y="18" text-anchor="middle" font-weight="bold">${sweep.target}</text>
  <rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>
  ${ticks}
  <text x="${pad.left + plotW / 2}" y="${height - 8}" text-anchor="middle">concurrency</text>
  <text x="${pad.left - 6}" y="${pad.top + 4}" text-anchor="end" fill="#1f6feb">${maxRate.toFixed(0)}</text>
  <text x="${pad.left - 6}" y="${pad.top + plotH}" text-anchor="end" fill="#1f6feb">0 files/s</text>
  <text x="${pad.left + plotW + 4}" y="${pad.top + 4}" fill="#d9822b">${maxP95.toFixed(0)} ms</text>
  <polyline points="${rate}" fill="none" stroke="#1f6feb" stroke-width="2"/>
  <polyline points="${p95}" fill="none" stroke="#d9822b" stroke-width="2"/>
  <line x1="${pad.left}" x2="${pad.left + plotW}" y1="${autoRate}" y2="${autoRate}" stroke="#1f6feb" stroke-dasharray="5,4"/>
  <line x1="${pad.left}" x2="${pad.left + plotW}" y1="${autoP95}" y2="${autoP95}" stroke="#d9822b" stroke-dasharray="5,4"/>
  <text x="${pad.left + 4}" y="${Number(autoRate) - 4}" fill="#1f6feb">auto ${sweep.auto.filesPerSecond.toFixed(0)} files/s</text>
</g>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width * sweeps.length}" height="${height + 20}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
<text x="10" y="${height + 14}" fill="#555">solid: fixed concurrency (blue files/s, orange p95 latency); dashed: --concurrency auto</text>
</svg>
`;
}

async function main(): Promise<void> {
  // 16,000 thumbnails: a few seconds a run even on the sink, so the first round trips do not make the figure.
  const [, , thumbnails] = await makeCorpus(join(ROOT, 'bench/corpus'));
  // About three seconds a run on the reference server here.
  const jpegs = await makeJpegSet(join(ROOT, 'bench/corpus/jpeg-256-600'), 600);
  const targets: Target[] = [
    { name: 'reference server (synthetic)', start: () => startServe(['--model', 'builtin:synthetic', '--device', 'cpu', '--queue-limit', '4096', '--cache-size', '0']), path: '/v1/predict', files: jpegs },
    { name: '429 above 8 in flight', start: () => startScript('limit-server.js', { LIMIT: '8' }), path: '/upload', files: thumbnails?.dir ?? '' },
    { name: 'sink', start: () => startScript('sink.js'), path: '/upload', files: thumbnails?.dir ?? '' },
  ];
  const sweeps: Sweep[] = [];
  for (const target of targets) sweeps.push(await sweep(target));
  process.stdout.write(`\n${table(sweeps)}\n`);
  await mkdir(join(ROOT, 'docs'), { recursive: true });
  await writeFile(join(ROOT, 'docs/bench-auto.svg'), chart(sweeps));
  process.stdout.write('\nchart: docs/bench-auto.svg\n');
}

await main();
