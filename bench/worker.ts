/**
 * A child process of the benchmark (bench/bench.ts): runs each scenario it is sent ({ run }), one at a time, and
 * answers with its result; { done } ends it.
 */
import './env';
import '../local/polyfill';
import { runScenario, type Scenario } from './scenario';

process.on('message', (m: { run?: Scenario; done?: boolean }) => {
  if (!m.run) {
    process.disconnect();
    return;
  }
  runScenario(m.run).then(
    (result) => process.send?.({ result }),
    (error: unknown) => process.send?.({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
