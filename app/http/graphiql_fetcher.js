    // Queries and mutations: GraphiQL's own fetcher. Subscriptions: GraphQL over SSE
    // (app/http/sse.py). The headers editor's headers (a key) go with both.
    const url = window.location.pathname;
    const http = GraphiQL.createFetcher({ url, headers: { "GraphQL-Preflight": "1" } });
    const blockString = new RegExp('"""[\\s\\S]*?"""', "g");
    const uncommented = (text) =>
      text.replace(blockString, " ").replace(/"(?:[^"\\\n]|\\.)*"|#[^\n]*/g, " ");
    function isSubscription(params) {
      const text = uncommented(params.query || "");
      if (params.operationName) {
        return new RegExp("\\bsubscription\\s+" + params.operationName + "\\b").test(text);
      }
      return /^\s*subscription\b/.test(text);
    }
    async function* overSSE(params, headers) {
      const response = await fetch(url, {
        method: "POST",
        headers: { ...headers, "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(params),
      });
      if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
        yield await response.json();  // refused before it started: the JSON error
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer = (buffer + value).replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trim());
            }
            if (event === "complete") return;
            if (event === "next") yield JSON.parse(data.join("\n"));
          }
        }
      } finally {
        reader.cancel();  // GraphiQL's stop button: the connection closes, the server stops
      }
    }
    const fetcher = (params, options) =>
      isSubscription(params)
        ? overSSE(params, (options && options.headers) || {})
        : http(params, options);
