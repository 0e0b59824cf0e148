#!/usr/bin/env node
// The one summary line of ./build.sh test: tests passed, failed and skipped across every
// layer, counted from the kept output of each step (target/test-logs/*.log), and the steps
// that failed (given after the directory). Exits 1 when anything failed.
//
//   node tools/test-summary.mjs target/test-logs [FAILED STEP]...
//
// What is counted: cargo's and wasm-bindgen-test's "test result: ok. N passed; M failed",
// node --test's "# pass N / # fail N / # skipped N", the conformance runners' "LABEL: N
// passed, M failed" (a golden case it could not compare counts as skipped); a skip is also a
// test that said "SKIP:" or "skipping:" (with LLAMA2_REQUIRE_FIXTURES=1 such a test fails).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...failedSteps] = process.argv.slice(2);
const total = { passed: 0, failed: 0, skipped: 0 };
const plain = (text) => text.replace(/\x1b\[[0-9;]*m/g, '');
for (const file of readdirSync(dir).filter((f) => f.endsWith('.log')).sort()) {
  const text = plain(readFileSync(join(dir, file), 'utf8'));
  for (const m of text.matchAll(/^test result: \w+\. (\d+) passed; (\d+) failed/gm)) {
    total.passed += Number(m[1]);
    total.failed += Number(m[2]);
  }
  for (const [, kind, n] of text.matchAll(/^# (pass|fail|skipped) (\d+)$/gm)) {
    total[{ pass: 'passed', fail: 'failed', skipped: 'skipped' }[kind]] += Number(n);
  }
  for (const m of text.matchAll(/^[\w ()+,.-]+: (\d+) passed(?: \((\d+) not comparable\))?, (\d+) failed$/gm)) {
    const uncompared = Number(m[2] ?? 0);
    total.passed += Number(m[1]) - uncompared;
    total.skipped += uncompared;
    total.failed += Number(m[3]);
  }
  total.skipped += (text.match(/^(?:.*\bSKIP:|skipping:)/gm) ?? []).length;
}
const steps = failedSteps.length ? `; steps that failed: ${failedSteps.join(', ')}` : '';
console.log(`\n./build.sh test: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped${steps}`);
process.exit(total.failed || failedSteps.length ? 1 : 0);
