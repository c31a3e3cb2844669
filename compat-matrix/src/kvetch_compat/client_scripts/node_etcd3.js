// Fixed client script for the Node.js etcd3 client: one JSON line per operation.
"use strict";
const { Etcd3 } = require("etcd3");

const url = process.argv[2];
const p = `/clients/node-etcd3/${Math.random().toString(16).slice(2, 8)}/`;
const client = new Etcd3({ hosts: url, dialTimeout: 5000 });

function rec(op, ok, detail, verify) {
  console.log(JSON.stringify({ op, ok: !!ok, detail: String(detail).slice(0, 300), verify: verify || null }));
}

async function attempt(op, fn) {
  try {
    await fn();
  } catch (err) {
    rec(op, false, `${err.name}: ${err.message}`);
  }
}

async function main() {
  await attempt("put", async () => {
    await client.put(p + "a").value("1");
    rec("put", true, "ok", [p + "a", "1"]);
  });
  await attempt("get", async () => {
    const v = await client.get(p + "a").string();
    rec("get", v === "1", v);
  });
  await attempt("get-prefix", async () => {
    await client.put(p + "b").value("2");
    const keys = (await client.getAll().prefix(p).keys()).sort();
    rec("get-prefix", keys.length === 2 && keys[0] === p + "a" && keys[1] === p + "b", keys.join(","));
  });
  await attempt("delete", async () => {
    const r = await client.delete().key(p + "b");
    rec("delete", r.deleted === "1", `deleted=${r.deleted}`, [p + "b", null]);
  });
  await attempt("txn", async () => {
    const r = await client.if(p + "a", "Value", "==", "1").then(client.put(p + "t").value("yes"))
      .else(client.put(p + "t").value("no")).commit();
    rec("txn", r.succeeded, `succeeded=${r.succeeded}`, [p + "t", "yes"]);
  });
  await attempt("lease", async () => {
    const lease = client.lease(60);
    await lease.put(p + "l").value("x");
    await lease.revoke();
    rec("lease", true, "revoked", [p + "l", null]);
  });
  await attempt("watch", async () => {
    const w = await client.watch().key(p + "w").create();
    const seen = new Promise((resolve) => w.on("put", (kv) => resolve(kv.value.toString())));
    await client.put(p + "w").value("seen");
    const v = await Promise.race([seen, new Promise((r) => setTimeout(() => r("timeout"), 5000))]);
    await w.cancel();
    rec("watch", v === "seen", v);
  });
  await attempt("member-list", async () => {
    const r = await client.cluster.memberList({});
    rec("member-list", r.members.length >= 1, r.members.map((m) => m.name).join(","));
  });
  await attempt("status", async () => {
    const r = await client.maintenance.status({});
    rec("status", !!r.version, r.version);
  });
  client.close();
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
