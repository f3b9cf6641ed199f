#!/usr/bin/env node
// A subscriber to the platform's events in Node.js, with nothing from the platform but its
// published contract: the JSON Schemas of each event's data (contracts/pins/<type>.v<n>.json).
//
//   node subscriber.js --amqp-uri amqp://district-subscriber:...@rabbitmq:5672/returnee-platform \
//       --queue district.changning-crm --bind accounts:returnee.registered [--schemas DIR]
//
// - asks passively whether each `<producer>.events` exchange exists: the platform declares it
//   (with its alternate exchange), a subscriber never does;
// - declares its own durable queue and binds it with one routing key per event type;
// - checks the CloudEvents 1.0 envelope and validates `data` with ajv against the schema its
//   `dataschema` names (urn:returnee-platform:event:<type>:v<n>); unknown fields are allowed;
// - prints one JSON line per event ({"received": id, "type", "valid", "errors"}) and acks it
//   after that; an event of an unknown version is acked and skipped.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const amqp = require("amqplib");
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

function options(argv) {
  const found = { bind: [], schemas: path.join(__dirname, "..", "..", "contracts", "pins") };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i].replace(/^--/, ""), argv[i + 1]];
    if (name === "bind") found.bind.push(value);
    else found[name.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
  }
  found.amqpUri = found.amqpUri || process.env.SUBSCRIBER_AMQP_URI;
  found.queue = found.queue || process.env.SUBSCRIBER_QUEUE;
  if (!found.amqpUri || !found.queue || found.bind.length === 0) {
    throw new Error("usage: --amqp-uri URI --queue NAME --bind producer:type [--bind ...]");
  }
  return found;
}

// Every published schema, by its dataschema URN.
function validators(folder) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  const byUrn = new Map();
  for (const file of fs.readdirSync(folder)) {
    const match = /^(.+)\.v(\d+)\.json$/.exec(file);
    if (match) {
      const schema = JSON.parse(fs.readFileSync(path.join(folder, file), "utf8"));
      byUrn.set(`urn:returnee-platform:event:${match[1]}:v${match[2]}`, ajv.compile(schema));
    }
  }
  return byUrn;
}

const ENVELOPE = ["specversion", "id", "source", "type", "time", "datacontenttype", "dataschema"];

function check(event, producer, wanted, byUrn) {
  const errors = ENVELOPE.filter((name) => typeof event[name] !== "string").map(
    (name) => `${name} is missing`
  );
  if (event.specversion !== "1.0") errors.push("specversion is not 1.0");
  if (event.source !== `/${producer}`) errors.push(`source is not /${producer}`);
  if (!wanted.has(event.type)) errors.push(`type ${event.type} is not bound`);
  if ("subject" in event && typeof event.subject !== "string") errors.push("subject is no string");
  if (typeof event.data !== "object" || event.data === null) errors.push("data is no object");
  if (errors.length) return { known: true, errors };
  const validate = byUrn.get(event.dataschema);
  if (!validate) return { known: false, errors: [] };
  if (validate(event.data)) return { known: true, errors: [] };
  return { known: true, errors: validate.errors.map((e) => `data${e.instancePath} ${e.message}`) };
}

async function main() {
  const opts = options(process.argv.slice(2));
  const byUrn = validators(opts.schemas);
  const connection = await amqp.connect(opts.amqpUri);
  const channel = await connection.createChannel();
  await channel.prefetch(10);
  const wanted = new Map(); // producer -> types
  for (const item of opts.bind) {
    const [producer, type] = item.split(":");
    if (!wanted.has(producer)) wanted.set(producer, new Set());
    wanted.get(producer).add(type);
  }
  await channel.assertQueue(opts.queue, { durable: true });
  for (const [producer, types] of wanted) {
    await channel.checkExchange(`${producer}.events`); // passive: closes the channel if absent
    for (const type of types) await channel.bindQueue(opts.queue, `${producer}.events`, type);
  }
  await channel.consume(opts.queue, (message) => {
    const producer = message.fields.exchange.replace(/\.events$/, "");
    let line;
    try {
      const event = JSON.parse(message.content.toString("utf8"));
      const { known, errors } = check(event, producer, wanted.get(producer) || new Set(), byUrn);
      line = { received: event.id, type: event.type, known, valid: errors.length === 0, errors };
    } catch (error) {
      line = { received: null, valid: false, errors: [`not JSON: ${error.message}`] };
    }
    process.stdout.write(`${JSON.stringify(line)}\n`);
    channel.ack(message);
  });
  process.stdout.write(`${JSON.stringify({ ready: opts.queue })}\n`);
  const stop = async () => {
    await channel.close().catch(() => {});
    await connection.close().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
