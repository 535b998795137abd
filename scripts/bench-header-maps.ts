/**
 * A micro-benchmark behind `setHeader` (src/codec/record.ts): three ways to build the header map
 * of a decoded record that keep a header named `__proto__` an ordinary header, timed in the
 * pattern of the frame decoder (names decoded from bytes, values as views), then the frame
 * decoder itself. Prints ns per header map (best of the runs, strategies interleaved so that a
 * noisy machine hurts them alike). Not a test: it asserts nothing.
 *
 * ```sh
 * npx tsc -p . && node dist/scripts/bench-header-maps.js
 * ```
 */
import { performance } from 'node:perf_hooks';
import { checkFrame, decodeRecords, encodedRecordBytes, encodeFrame, stampFrame } from '../src/codec/frame.js';
import { setHeader, type AppendRecord, type WalRecord } from '../src/codec/record.js';

const RUNS = 9;
const MAPS_PER_RUN = 100_000;
const HEADER_COUNTS = [1, 3, 8];

const NAMES = ['content-type', 'trace-id', 'source', 'schema', 'tenant', 'region', 'attempt', 'origin'];
const nameBytes = Buffer.from(NAMES.join(''));
const nameRanges: [number, number][] = [];
for (let p = 0, i = 0; i < NAMES.length; p += NAMES[i]!.length, i++) nameRanges.push([p, p + NAMES[i]!.length]);
const values = Buffer.alloc(64);

type Build = (count: number) => Record<string, Buffer>;

const strategies: Record<string, Build> = {
  defineProperty: (count) => {
    const headers: Record<string, Buffer> = {};
    for (let h = 0; h < count; h++) {
      const [start, end] = nameRanges[h]!;
      Object.defineProperty(headers, nameBytes.toString('utf8', start, end), { value: values.subarray(h, h + 4), enumerable: true, writable: true, configurable: true });
    }
    return headers;
  },
  setHeader: (count) => {
    const headers: Record<string, Buffer> = {};
    for (let h = 0; h < count; h++) {
      const [start, end] = nameRanges[h]!;
      setHeader(headers, nameBytes.toString('utf8', start, end), values.subarray(h, h + 4));
    }
    return headers;
  },
  nullPrototype: (count) => {
    const headers = Object.create(null) as Record<string, Buffer>;
    for (let h = 0; h < count; h++) {
      const [start, end] = nameRanges[h]!;
      headers[nameBytes.toString('utf8', start, end)] = values.subarray(h, h + 4);
    }
    return headers;
  },
};

function frameOf(count: number, records: number): Buffer {
  const batch: AppendRecord[] = [];
  for (let i = 0; i < records; i++) {
    const headers: Record<string, Buffer> = {};
    for (let h = 0; h < count; h++) headers[NAMES[h]!] = Buffer.from(`v${h}`);
    batch.push({ key: Buffer.from(`key-${i}`), value: Buffer.alloc(100), headers });
  }
  const frame = encodeFrame(batch, batch.reduce((sum, record) => sum + encodedRecordBytes(record), 0));
  stampFrame(frame, 0, 1, 0, 0, 0);
  return frame;
}

let sink = 0;
for (const count of HEADER_COUNTS) {
  const best: Record<string, number> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, build] of Object.entries(strategies)) {
      const start = performance.now();
      for (let i = 0; i < MAPS_PER_RUN; i++) sink += Object.keys(build(count)).length;
      const ns = ((performance.now() - start) * 1e6) / MAPS_PER_RUN;
      best[name] = Math.min(best[name] ?? Infinity, ns);
    }
  }
  const frame = frameOf(count, 1000);
  const check = checkFrame(frame, 0, frame.length);
  if (check.kind !== 'ok') throw new Error('the benchmark frame does not check');
  let decode = Infinity;
  for (let run = 0; run < RUNS; run++) {
    const start = performance.now();
    for (let i = 0; i < 100; i++) {
      const out: WalRecord[] = [];
      decodeRecords(frame, 0, check.header, 0, Infinity, out);
      sink += out.length;
    }
    decode = Math.min(decode, ((performance.now() - start) * 1e6) / (100 * 1000));
  }
  const cells = Object.entries(best).map(([name, ns]) => `${name} ${ns.toFixed(0)} ns`);
  console.log(`${count} header(s) per map: ${cells.join(', ')}; decodeRecords ${decode.toFixed(0)} ns per record`);
}
if (sink < 0) console.log(sink);
