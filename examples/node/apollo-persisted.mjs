// Apollo Client 4 with automatic persisted queries over BatchHttpLink (Node 20+):
// PersistedQueryLink in front of BatchHttpLink, SHA-256 from node:crypto (no extra package).
//
//   npm ci && node apollo-persisted.mjs [URL]
//
// 1. A fresh server knows none of the documents: the batch of hashes comes back with a
//    PERSISTED_QUERY_NOT_FOUND per entry, and the link resends those operations WITH their text
//    (one more batched POST), which registers them.
// 2. A new client (empty cache) asks again, plus one new query: one POST of hashes only; the new
//    query alone misses, and only it is resent with its text. The others ran from the store.
// Prints {"runs": [{"posts": [[<entries with text>, <entries>], ...], "bakeries": [...]}, ...]}.
import { createHash } from 'node:crypto';

import { ApolloClient, InMemoryCache, gql } from '@apollo/client';
import { BatchHttpLink } from '@apollo/client/link/batch-http';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const [uri = 'http://127.0.0.1:8000/graphql'] = process.argv.slice(2);
const sha256 = (text) => createHash('sha256').update(text).digest('hex');

function client(posts) {
  // Records what each POST carried, to show it; a real client passes no `fetch`.
  const recordingFetch = (input, init) => {
    const entries = [JSON.parse(init.body)].flat();
    posts.push([entries.filter((e) => e.query).length, entries.length]);
    return fetch(input, init);
  };
  const link = new PersistedQueryLink({ sha256 }).concat(
    // Keep batchMax at or below the server's BATCHERY_MAX_BATCH_OPERATIONS (100).
    new BatchHttpLink({ uri, fetch: recordingFetch, batchMax: 20, batchInterval: 10 }),
  );
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

const BAKERY = gql`query Bakery($id: ID!) { bakery(id: $id) { id name } }`;
const PRODUCTS = gql`query Products { products { name } }`;
// A document no run before has sent: its first request is always a miss.
const FRESH = gql(`query Fresh${Date.now()} { bakery(id: "4") { id name } }`);

async function run(queries) {
  const posts = [];
  const apollo = client(posts);
  const results = await Promise.all(queries.map((q) => apollo.query(q)));
  return { posts, data: results.map((r) => r.data) };
}

const first = await run([
  { query: BAKERY, variables: { id: '1' } },
  { query: PRODUCTS },
]);
const second = await run([
  { query: BAKERY, variables: { id: '2' } },
  { query: PRODUCTS },
  { query: FRESH },
]);
console.log(JSON.stringify({ runs: [first, second] }));
