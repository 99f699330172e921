// memjs (Node) with SASL PLAIN against a server started with `-S`.
//
// Usage: node memjs_sasl.js HOST PORT USER PASSWORD
// memjs is resolved through NODE_PATH (CI installs it under target/ci-node).
//
// With the right credentials set, get and delete must work; a client with a
// wrong password must see its request fail (memjs drops the connection on
// status 0x0020 and fails the pending request). Prints one summary line and
// exits non-zero on the first mismatch.
'use strict';

const memjs = require('memjs');

let passed = 0;

function check(what, got, want) {
  if (got !== want) {
    console.log(`memjs sasl: FAILED ${what}: got ${got}, want ${want}`);
    process.exit(1);
  }
  passed += 1;
}

// A client that gives up quickly and logs nothing: a refusal is expected.
function client(server, username, password) {
  const quiet = { log() {} };
  return memjs.Client.create(server, {
    username, password, retries: 1, timeout: 2, logger: quiet,
  });
}

async function authenticated(server, user, password) {
  const mc = client(server, user, password);
  check('set', await mc.set('memjs:k', 'value', { expires: 0 }), true);
  const { value } = await mc.get('memjs:k');
  check('get', value && value.toString(), 'value');
  check('get miss', (await mc.get('memjs:absent')).value, null);
  check('delete', await mc.delete('memjs:k'), true);
  check('get deleted', (await mc.get('memjs:k')).value, null);
  mc.close();
}

async function refused(server, user) {
  const mc = client(server, user, 'not-the-password');
  let outcome = 'succeeded';
  try {
    await mc.get('memjs:k');
  } catch (err) {
    outcome = String((err && err.message) || err);
  }
  check('wrong password fails the request', outcome,
    'Memcached server authentication failed!');
  mc.close();
}

async function main() {
  const [host, port, user, password] = process.argv.slice(2);
  const server = `${host}:${port}`;
  await authenticated(server, user, password);
  await refused(server, user);
  const version = require('memjs/package.json').version;
  console.log(`memjs sasl: ${passed} checks passed (memjs ${version})`);
}

main().catch((err) => {
  console.log(`memjs sasl: FAILED with ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
