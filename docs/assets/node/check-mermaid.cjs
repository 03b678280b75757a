// Parse every Mermaid diagram of the docs with the Mermaid the site ships, as a browser would run it.
//
//   node check-mermaid.cjs MERMAID_MIN_JS < diagrams.json
//
// stdin: [{"where": "flow.md, diagram 1", "source": "sequenceDiagram ..."}, ...]
// stdout: the diagrams that do not parse, as [{"where": ..., "error": ...}]. Offline: jsdom stands in
// for the browser (NODE_PATH names the node_modules that holds it); nothing is fetched.
"use strict";

const fs = require("fs");
const { JSDOM, VirtualConsole } = require("jsdom");

async function main() {
  const diagrams = JSON.parse(fs.readFileSync(0, "utf8"));
  // Mermaid's own console chatter (e.g. its parse-error log) is not a result.
  const dom = new JSDOM("<!doctype html><body></body>", {
    runScripts: "dangerously",
    pretendToBeVisual: true,
    virtualConsole: new VirtualConsole(),
  });
  const script = dom.window.document.createElement("script");
  script.textContent = fs.readFileSync(process.argv[2], "utf8");
  dom.window.document.body.appendChild(script);
  const mermaid = dom.window.mermaid;
  if (!mermaid || typeof mermaid.parse !== "function") {
    throw new Error(`${process.argv[2]} did not define mermaid.parse`);
  }
  mermaid.initialize({ startOnLoad: false });
  const failures = [];
  for (const { where, source } of diagrams) {
    try {
      await mermaid.parse(source);
    } catch (error) {
      failures.push({ where, error: String((error && error.message) || error) });
    }
  }
  process.stdout.write(JSON.stringify(failures));
}

main().catch((error) => {
  process.stderr.write(`${(error && error.stack) || error}\n`);
  process.exit(2);
});
