// Drive the npm `etcd3` client against one endpoint and print the results as
// JSON on stdout (one object). Usage: node scenario.js 127.0.0.1:PORT
'use strict';
const { Etcd3 } = require('etcd3');

async function main() {
  const endpoint = process.argv[2];
  const client = new Etcd3({ hosts: `http://${endpoint}` });
  const out = {};
  try {
    await client.put('js/a').value('1');
    await client.put('js/b').value('2');
    await client.put('js/c').value('3');
    out.get = await client.get('js/a').string();
    out.missing = await client.get('js/none').string();
    out.prefix = await client.getAll().prefix('js/').strings();
    out.count = await client.getAll().prefix('js/').count();
    out.keysDesc = await client.getAll().prefix('js/').sort('Key', 'Descend').limit(2).keys();

    const del = await client.delete().key('js/c').exec();
    out.deleted = del.deleted;

    const txn = await client.if('js/a', 'Value', '==', '1')
      .then(client.put('js/t').value('yes'))
      .else(client.put('js/t').value('no'))
      .commit();
    out.txnSucceeded = txn.succeeded;
    out.txnValue = await client.get('js/t').string();

    // watch: register, then write, then wait for the event
    const watcher = await client.watch().key('js/w').create();
    const event = new Promise((resolve) => watcher.on('put', (kv) => resolve(kv.value.toString())));
    await client.put('js/w').value('seen');
    out.watch = await event;
    await watcher.cancel();

    const lease = client.lease(30, { autoKeepAlive: false });
    await lease.put('js/leased').value('x');
    out.leaseTtl = Number((await lease.keepaliveOnce()).TTL);
    out.leasedBefore = await client.get('js/leased').string();
    await lease.revoke();
    out.leasedAfter = await client.get('js/leased').string();

    const lock = client.lock('js/lock');
    await lock.acquire();
    out.lockKeys = (await client.getAll().prefix('js/lock').keys()).length;
    await lock.release();
    out.lockKeysAfter = (await client.getAll().prefix('js/lock').keys()).length;

    const status = await client.maintenance.status();
    out.version = status.version;
    out.revision = status.header.revision;
    const members = await client.cluster.memberList({});
    out.members = members.members.map((m) => m.name);

    try {
      await client.get('js/a').revision(1000).string();
      out.futureRev = 'no error';
    } catch (err) {
      out.futureRev = `${err.constructor.name}: ${err.message}`;
    }
  } finally {
    client.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
