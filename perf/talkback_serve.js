// Talkback (npm `talkback`) serving one tape, the seed request, for perf/replay.sh.
// Usage: node talkback_serve.js TAPES_DIR BODY_FILE PATH; prints `listening on http://127.0.0.1:PORT`.
// Talkback's own request handler runs behind an http server bound to 127.0.0.1 (Talkback's
// server binds every interface), forwarding requests to it the way Talkback's server does.
// The tape holds the body in base64 so Talkback serves the exact bytes (a JSON object in a
// tape would be served pretty-printed); header matching is off, as ims-vcr ignores headers.
const fs = require("fs"), http = require("http"), talkback = require("talkback");
const [tapes, body, path] = process.argv.slice(2);
fs.mkdirSync(tapes, { recursive: true });
fs.writeFileSync(`${tapes}/seed.json5`, JSON.stringify({
  meta: { createdAt: new Date().toISOString(), host: "http://127.0.0.1:9", reqHumanReadable: true, resHumanReadable: false },
  req: { url: path, method: "GET", headers: {}, body: "" },
  res: { status: 200, headers: { "content-type": ["application/json"] }, body: fs.readFileSync(body).toString("base64") },
}));
const options = { host: "http://127.0.0.1:9", path: tapes, record: talkback.Options.RecordMode.DISABLED,
  allowHeaders: [], silent: true, summary: false };
talkback.requestHandler(options).then((handler) => {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c)).on("end", async () => {
      const r = await handler.handle({ url: req.url, method: req.method, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(r.status, r.headers);
      res.end(r.body);
    });
  });
  server.listen(0, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
});
