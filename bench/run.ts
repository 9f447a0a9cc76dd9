/**
 * `npm run bench [-- --quick] [-- --no-bundles] [-- --workers N]`: runs the benchmark, prints it, and writes
 * bench/results.json, bench/results.md and bench/chart.svg. The full run uses one child process per CPU (at most
 * two by default); --quick runs N=1 and N=10 at T=10 in this process.
 */
import './env';
import '../local/polyfill';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { runBench } from './bench';
import { chartSvg } from './chart';
import { formatMarkdown, formatText } from './report';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const workersArg = args.indexOf('--workers');
const workers = workersArg >= 0 ? Number(args[workersArg + 1]) : quick ? 0 : Math.min(2, availableParallelism());
const log = (line: string) => process.stderr.write(`${line}\n`);
const results = await runBench({ quick, workers, bundles: !args.includes('--no-bundles'), log });
const out = (name: string) => new URL(`./${name}`, import.meta.url);
writeFileSync(out('results.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(out('results.md'), formatMarkdown(results));
writeFileSync(out('chart.svg'), chartSvg(results.chart.points, results.chart.targets));
process.stdout.write(`${formatText(results)}\n`);
