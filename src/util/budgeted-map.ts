/**
 * A map that keeps values only while their total size stays within a byte budget: a value that
 * would overflow it is not kept (the caller computes it again next time), and nothing is evicted.
 * For data read several times in one run (cached feature rows, decoded photos) that may or may not
 * fit in memory.
 */
export class BudgetedMap<K, V> {
  private readonly values = new Map<K, V>();
  private bytes = 0;

  constructor(private readonly budgetBytes: number) {}

  get(key: K): V | undefined {
    return this.values.get(key);
  }

  /** Keeps `value` (of `bytes`) under `key` if it is new and fits; returns it either way. */
  keep(key: K, value: V, bytes: number): V {
    if (!this.values.has(key) && this.bytes + bytes <= this.budgetBytes) {
      this.values.set(key, value);
      this.bytes += bytes;
    }
    return value;
  }
}
