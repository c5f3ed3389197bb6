// GraphQL-over-HTTP server audit (npm graphql-http `serverAudits`) against a running gateway.
// Usage: node audit.mjs <url> <authorization header value>. Prints one line per audit and exits
// non-zero when any audit warns or fails: the optional (MAY/SHOULD) items count too.
import { serverAudits } from 'graphql-http';

const [url, authorization] = process.argv.slice(2);
if (!url || !authorization) {
  console.error('usage: node audit.mjs <url> <authorization>');
  process.exit(2);
}

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('authorization', authorization);
  return fetch(input, { ...init, headers });
};

let bad = 0;
for (const { id, name, fn } of serverAudits({ url, fetchFn })) {
  const result = await fn();
  if (result.status !== 'ok') bad += 1;
  const detail = result.status === 'ok' ? '' : ` -- ${result.reason}`;
  console.log(`${result.status.padEnd(5)} ${id} ${name}${detail}`);
}
console.log(`audit: ${bad} warnings or errors`);
process.exit(bad === 0 ? 0 : 1);
