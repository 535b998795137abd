/**
 * Flattens an async source of record batches into an async iterator of records, without a promise
 * hop per record: `next()` answers from the current batch with an already resolved promise and only
 * awaits the source when the batch is used up. (An async generator with `yield*` costs a microtask
 * per record: about 3M records/s against 11M/s here.)
 */
export class BatchIterator<T> implements AsyncIterableIterator<T> {
  private batch: readonly T[] = [];
  private index = 0;
  private done = false;

  constructor(private readonly source: AsyncIterator<readonly T[]>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.index < this.batch.length) return Promise.resolve({ done: false, value: this.batch[this.index++]! });
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    return this.pull();
  }

  private async pull(): Promise<IteratorResult<T>> {
    for (;;) {
      const result = await this.source.next();
      if (result.done === true) {
        this.done = true;
        return { done: true, value: undefined };
      }
      if (result.value.length > 0) {
        this.batch = result.value;
        this.index = 1;
        return { done: false, value: result.value[0]! };
      }
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.done = true;
    this.batch = [];
    await this.source.return?.();
    return { done: true, value: undefined };
  }
}
