// A tiny agentstore client in Node.js, built at run time from agentstore.proto alone.
//
//   node client.js HOST:PORT [TOKEN]
//
// Creates a session, appends two events, provokes a concurrency conflict, appends over an
// AppendStream call, replays what it wrote, and prints one JSON object on stdout (checked
// by tests/server/test_grpc_node.py).
"use strict";

const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO = path.join(__dirname, "..", "..", "..", "agentstore", "server", "agentstore.proto");
const definition = protoLoader.loadSync(PROTO, {
  keepCase: true, // field names as in the .proto: session_id, payload_json, ...
  longs: Number,
  defaults: true,
  oneofs: true,
});
const { AgentStore } = grpc.loadPackageDefinition(definition).agentstore.v1;

const [target, token] = process.argv.slice(2);
const client = new AgentStore(target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (token) metadata.set("authorization", `Bearer ${token}`);

const json = (value) => Buffer.from(JSON.stringify(value));
const call = (method, request) =>
  new Promise((resolve, reject) =>
    client[method](request, metadata, (err, reply) => (err ? reject(err) : resolve(reply))),
  );

function readEvents(request) {
  return new Promise((resolve, reject) => {
    const events = [];
    const stream = client.ReadEvents(request, metadata);
    stream.on("data", (batch) => events.push(...batch.events));
    stream.on("error", reject);
    stream.on("end", () => resolve(events));
  });
}

// Send every request on one AppendStream call and collect the answers, sorted by tag.
function appendStream(requests) {
  return new Promise((resolve, reject) => {
    const answers = [];
    const stream = client.AppendStream(metadata);
    stream.on("data", (answer) => answers.push(answer));
    stream.on("error", reject);
    stream.on("end", () => resolve(answers.sort((a, b) => a.tag - b.tag)));
    for (const request of requests) stream.write(request);
    stream.end();
  });
}

async function main() {
  const session = await call("CreateSession", { name: "node-agent", labels: { lang: "js" } });
  const appended = await call("Append", {
    session_id: session.id,
    expected_seq: 0,
    events: [
      { type: "user_message", payload_json: json({ text: "Book BER -> MUC" }) },
      {
        type: "tool_called",
        payload_json: json({ tool: "search_flights", query: "BER -> MUC" }),
        metadata_json: json({ tool_name: "search_flights", duration_ms: 800 }),
      },
    ],
  });
  let conflict = null;
  try {
    await call("Append", {
      session_id: session.id,
      expected_seq: 0,
      events: [{ type: "error", payload_json: json("stale writer") }],
    });
  } catch (err) {
    conflict = {
      code: grpc.status[err.code],
      agentstore_code: err.metadata.get("agentstore-error-code")[0] || null,
    };
  }
  // Two appends on one AppendStream call: one lands, one fails with its own answer.
  const streamed = await appendStream([
    {
      tag: 1,
      append: { session_id: session.id, events: [{ type: "llm_response", payload_json: json("done") }] },
    },
    { tag: 2, append: { session_id: "no-such-session", events: [{ type: "custom" }] } },
  ]);
  const replayed = await readEvents({ session_id: session.id });
  process.stdout.write(
    JSON.stringify({
      session_id: session.id,
      appended: appended.events.map((e) => e.sequence_number),
      conflict,
      streamed: streamed.map((a) =>
        a.result === "ok"
          ? { tag: a.tag, seq: a.ok.events[0].sequence_number }
          : { tag: a.tag, status: a.error.status, agentstore_code: a.error.code },
      ),
      replayed: replayed.map((e) => ({
        seq: e.sequence_number,
        type: e.type,
        payload: JSON.parse(e.payload_json.toString()),
        metadata: e.metadata_json.length ? JSON.parse(e.metadata_json.toString()) : {},
        timestamp: e.timestamp,
      })),
    }) + "\n",
  );
  client.close();
}

main().catch((err) => {
  process.stderr.write(`node client failed: ${err.message}\n`);
  process.exit(1);
});
