// tfjs, loaded with require() rather than import: an ES module importing a CommonJS package makes
// Node run its export lexer over that package and every bundle it re-exports (tfjs-core, -layers,
// -converter, -data, -backend-cpu, -backend-webgl: megabytes of source), which tripled tfjs's load
// time. Modules import this one's default export, the whole `@tensorflow/tfjs` namespace.
import tf = require('@tensorflow/tfjs');
export = tf;
