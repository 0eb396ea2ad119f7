// The wasm backend, loaded with require() for the reason ./tf.cts gives.
import wasm = require('@tensorflow/tfjs-backend-wasm');
export = wasm;
