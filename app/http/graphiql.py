"""GraphiQL, served with its JavaScript and CSS from this server: it works with no internet.

The assets come from the npm registry at install time (`make graphiql`) into an ignored folder;
when they are missing, the page says how to get them instead of failing silently.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
ASSETS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "graphiql.min.css",
)

DEFAULT_QUERY = """\
# Welcome to Batchery. Nested fields are batched:
# this query runs 2 SQL statements however many
# bakeries it returns (see /metrics:
# batchery_db_statements_total).
{
  bakeries(region: SOUTH_WEST) {
    name
    orders(limitTo: 50) {
      id
      writtenPhrase
    }
  }
}
"""

# `rel="icon" href="data:,"`: an empty icon, so the browser does not ask for /favicon.ico (a 404
# in its console and in the access log).
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Batchery GraphiQL</title>
  <link rel="icon" href="data:,">
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
  <link rel="stylesheet" href="{base}/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="{base}/react.production.min.js"></script>
  <script src="{base}/react-dom.production.min.js"></script>
  <script src="{base}/graphiql.min.js"></script>
  <script>
{fetcher}
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{ fetcher, defaultQuery: {default_query} }})
    );
  </script>
</body>
</html>
"""

MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Batchery GraphiQL</title>
<link rel="icon" href="data:,"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>GraphiQL is not installed</h1>
<p>Its JavaScript and CSS are served by this server, and were not found in
<code>{vendor}</code>. Run <code>make graphiql</code> (it fetches them from the npm registry),
then reload this page.</p>
<p>Meanwhile the API works: <code>curl -H 'Content-Type: application/json'
-d '{{"query": "{{ products {{ name stock }} }}"}}' {url}</code></p>
</body></html>
"""

# Queries and mutations go through GraphiQL's own fetcher; subscriptions through this one, as
# GraphQL over SSE (app/http/sse.py). The bundle (graphiql 3.8.3) does carry a graphql-ws client
# (`subscriptionUrl`), but over SSE a subscription is one more HTTP request: the headers editor's
# headers (a key) go with it exactly as with a query, the same CORS and proxies apply, and the
# fetcher is small enough to be tested on its own (node, tests/live/test_subscriptions.py).
FETCHER = (Path(__file__).parent / "graphiql_fetcher.js").read_text()

STATIC_PATH = "/graphiql-static"


def assets_present() -> bool:
    return all((VENDOR_DIR / name).is_file() for name in ASSETS)


def graphiql_page(url: str) -> HTMLResponse:
    if not assets_present():
        return HTMLResponse(MISSING.format(vendor=VENDOR_DIR, url=url))
    import json

    html = PAGE.format(base=STATIC_PATH, default_query=json.dumps(DEFAULT_QUERY), fetcher=FETCHER)
    return HTMLResponse(html)
