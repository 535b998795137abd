/**
 * The seed of a randomised test: from `WALD_TEST_SEED` to replay a failure, else random. Printed so
 * that a failing run can be replayed.
 */
export function testSeed(name: string): number {
  const fromEnv = process.env['WALD_TEST_SEED'];
  const seed = fromEnv !== undefined ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
  console.log(`# ${name}: seed ${seed} (replay with WALD_TEST_SEED=${seed})`);
  return seed;
}

/** A small deterministic PRNG (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
