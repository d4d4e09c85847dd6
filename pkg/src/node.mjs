// Node.js entry (ESM): the CommonJS build, re-exported, so that `import` and `require` in one
// process share one wasm instance and one `Evaluator` class.
import api from '../dist/node.cjs';

export const {
  init,
  Evaluator,
  Replica,
  createPushReceiver,
  generateKeyPair,
  compileSnapshot,
  diffModels,
  signWatermark,
  validateModel,
  inspect,
} = api;
