// What both Jest environments check: a model compiled and signed, loaded by an evaluator, and
// its decisions; with `require`, as Jest loads modules.
const api = require('edge-authz');

const MODEL = {
  version: 1,
  tenant: 'acme',
  actions: { read: { tier: 'low' }, export: { tier: 'high' } },
  roles: { viewer: ['read'], admin: ['read', 'export'] },
  resources: [{ id: 'org:acme' }, { id: 'doc:plan', parent: 'org:acme' }],
  memberships: [{ member: 'user:alice', group: 'group:eng' }],
  assignments: [{ principal: 'group:eng', role: 'viewer', resource: 'org:acme' }],
};

module.exports = function decisions() {
  const { publicKey, secretKey } = api.generateKeyPair();
  const ev = new api.Evaluator({ tenant: 'acme', publicKeys: [publicKey], clock: () => 2000 });
  ev.loadSnapshot(api.compileSnapshot(MODEL, { epoch: 1, secretKey, issuedAt: 1000 }));
  let code;
  try {
    ev.loadSnapshot(new Uint8Array([1, 2, 3]));
  } catch (e) {
    code = e.code;
  }
  return {
    read: ev.check('user:alice', 'read', 'doc:plan'),
    exportDenied: ev.check('user:alice', 'export', 'doc:plan').reason,
    listed: ev.listResources('user:alice', 'read'),
    badBytes: code,
  };
};
