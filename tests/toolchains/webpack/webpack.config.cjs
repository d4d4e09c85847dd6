// webpack 5 as it comes: nothing for edge-authz (top-level await and `new URL(…, import.meta.url)`
// assets are webpack 5's defaults).
const path = require('node:path');

module.exports = {
  mode: 'production',
  entry: './main.js',
  output: { path: path.resolve(__dirname, 'dist'), filename: 'main.js', clean: true },
};
