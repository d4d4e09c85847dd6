// Typed key strings through the package, loaded by `require` and by `import`: generateKeyPair
// writes `edge-authz-public:` and `edge-authz-secret:` keys; every function that takes a key also
// takes the bare base64 (what older key files hold), and refuses a typed key of the other kind with
// `wrong_key_kind`, never echoing the key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXAMPLE } from './edge.mjs';
import { importPackage, requirePackage } from './pkg.mjs';

const PUBLIC = 'edge-authz-public:';
const SECRET = 'edge-authz-secret:';
const NOW = Date.now();

function wrongKind(f, expected, key) {
  let caught;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'throws');
  assert.equal(caught.code, 'wrong_key_kind', caught.message);
  assert.match(caught.message, new RegExp(`^a ${expected === 'public' ? 'secret' : 'public'} key was given where a ${expected} key is expected`));
  assert.ok(!caught.message.includes(key.slice(key.indexOf(':') + 1)), 'the message echoes no key');
}

for (const [how, load] of [['require', async () => requirePackage()], ['import', importPackage]]) {
  test(`${how}: generateKeyPair writes typed keys`, async () => {
    const pkg = await load();
    const { publicKey, secretKey } = pkg.generateKeyPair();
    assert.ok(publicKey.startsWith(PUBLIC), publicKey);
    assert.ok(secretKey.startsWith(SECRET));
    assert.equal(publicKey.length, PUBLIC.length + 44);
    assert.equal(secretKey.length, SECRET.length + 44);
    const snapshot = pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey, issuedAt: NOW });
    const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [publicKey] });
    assert.deepEqual(ev.loadSnapshot(snapshot).epoch, 1);
    assert.equal(pkg.inspect(snapshot, { publicKeys: [publicKey] }).signature, 'verified');
  });

  test(`${how}: a key of the wrong kind is refused with wrong_key_kind`, async () => {
    const pkg = await load();
    const { publicKey, secretKey } = pkg.generateKeyPair();
    wrongKind(() => new pkg.Evaluator({ tenant: 'acme', publicKeys: [secretKey] }), 'public', secretKey);
    const other = pkg.generateKeyPair().publicKey;
    wrongKind(() => new pkg.Evaluator({ tenant: 'acme', publicKeys: [other, secretKey] }), 'public', secretKey);
    wrongKind(() => pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey: publicKey, issuedAt: NOW }), 'secret', publicKey);
    wrongKind(
      () => pkg.diffModels(EXAMPLE, EXAMPLE, { baseEpoch: 1, epoch: 2, secretKey: publicKey, issuedAt: NOW }),
      'secret',
      publicKey,
    );
    wrongKind(() => pkg.signWatermark({ tenant: 'acme', watermark: 1, secretKey: publicKey, issuedAt: NOW }), 'secret', publicKey);
    const snapshot = pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey, issuedAt: NOW });
    wrongKind(() => pkg.inspect(snapshot, { publicKeys: [secretKey] }), 'public', secretKey);
  });

  test(`${how}: bare base64 keys are still taken, with the same key id`, async () => {
    const pkg = await load();
    const { publicKey, secretKey } = pkg.generateKeyPair();
    const barePublic = publicKey.slice(PUBLIC.length);
    const bareSecret = secretKey.slice(SECRET.length);
    const typed = pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey, issuedAt: NOW });
    const bare = pkg.compileSnapshot(EXAMPLE, { epoch: 1, secretKey: bareSecret, issuedAt: NOW });
    assert.deepEqual(bare, typed, 'the same key signs the same bytes');
    const info = pkg.inspect(typed, { publicKeys: [barePublic] });
    assert.equal(info.signature, 'verified');
    assert.equal(info.keyId, pkg.inspect(typed, { publicKeys: [publicKey] }).keyId);
    const ev = new pkg.Evaluator({ tenant: 'acme', publicKeys: [barePublic] });
    assert.equal(ev.loadSnapshot(typed).epoch, 1);
    assert.equal(ev.check('user:alice', 'read', 'doc:roadmap').allowed, true);
  });
}
