// The graphql-http server audits (GraphQL over HTTP conformance) against a live server.
//
//   node tests/audit/audit.mjs http://127.0.0.1:8000/graphql [--json]
//
// Prints one line per audit and exits 1 unless every audit is "ok": a failed MUST is an error, a
// failed SHOULD a warning, a failed MAY a notice, and Batchery aims for none of them.
import { serverAudits } from 'graphql-http';

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const url = args.find((arg) => !arg.startsWith('--')) ?? process.env.AUDIT_URL;
if (!url) {
  console.error('usage: node audit.mjs <url of /graphql> [--json]');
  process.exit(2);
}

const results = await Promise.all(serverAudits({ url }).map((audit) => audit.fn()));
const failed = results.filter((result) => result.status !== 'ok');

if (asJson) {
  const summary = results.map(({ id, name, status, reason }) => ({ id, name, status, reason }));
  console.log(JSON.stringify({ url, total: results.length, failed: failed.length, results: summary }));
} else {
  for (const result of results) {
    const line = `${result.status.padEnd(6)} ${result.id} ${result.name}`;
    console.log(result.reason ? `${line}\n       ${result.reason}` : line);
  }
  const counts = {};
  for (const result of results) counts[result.status] = (counts[result.status] ?? 0) + 1;
  const tally = Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(', ');
  console.log(`\n${results.length} audits against ${url}: ${tally}`);
}
process.exit(failed.length === 0 ? 0 : 1);
