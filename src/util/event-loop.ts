/**
 * A turn of the event loop. Batches from memory never wait on I/O, so without this a whole epoch
 * runs as one macrotask and neither a signal handler nor a timer can run until it ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
