module.exports = {
  read: {
    allowed: true,
    reason: 'granted',
    epoch: 1,
    watermark: 0,
    tier: 'low',
    grant: { principal: 'group:eng', role: 'viewer', resource: 'org:acme', path: ['user:alice', 'group:eng'] },
  },
  exportDenied: 'no_grant',
  listed: ['doc:plan', 'org:acme'],
  badBytes: 'bad_magic',
};
