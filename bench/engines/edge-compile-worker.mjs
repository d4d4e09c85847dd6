// Worker thread for engines/edge-authz.mjs: compiles and signs the snapshot with the package's own
// compileSnapshot in a wasm instance separate from the benchmarked evaluator's.
import { parentPort, workerData } from 'node:worker_threads';
import { loadModule } from './edge-authz.mjs';

try {
  const edge = await loadModule(workerData.entry);
  const { publicKey, secretKey } = edge.generateKeyPair();
  const bytes = edge.compileSnapshot(workerData.model, { epoch: 1, secretKey, issuedAt: workerData.now });
  parentPort.postMessage({ bytes, publicKey });
} catch (e) {
  parentPort.postMessage({ error: String(e && e.message || e), code: e && e.code });
}
