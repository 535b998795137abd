import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeDeclarations, OptionSet } from '../../../src/options/option-set.js';
import { booleanOption, choiceOption, integerOption, optionGroup, readOptionText, textOption } from '../../../src/options/option-spec.js';

const doc = { unit: 'ms', doc: 'a period', why: 'a test option.' };

/** A test-only declaration with a group, as the engine and server have none yet. */
const TEST_OPTIONS = new OptionSet(
  {
    periodMs: integerOption({ ...doc, default: 100 }),
    sizeBytes: integerOption({ ...doc, unit: 'bytes', default: 4096 }, { min: 4096, max: 65536 }),
    mode: choiceOption(['fast', 'safe'], { ...doc, unit: 'mode', default: 'safe' }),
    compaction: optionGroup({
      enabled: booleanOption({ doc: 'compact', why: 'a test group member.', default: false }),
      minIntervalMs: integerOption({ ...doc, default: 60_000 }),
    }),
  },
  [
    {
      key: 'compaction.minIntervalMs',
      describe: (name) => `at least ${name('periodMs')}`,
      check: (values) => (values.compaction.minIntervalMs >= values.periodMs ? undefined : String(values.periodMs)),
    },
  ],
);

describe('OptionSet', () => {
  it('fills in every default, groups nested, frozen', () => {
    const values = TEST_OPTIONS.resolve({}, {});
    assert.deepEqual(values, { periodMs: 100, sizeBytes: 4096, mode: 'safe', compaction: { enabled: false, minIntervalMs: 60_000 } });
    assert.deepEqual(TEST_OPTIONS.defaults, values);
    assert.ok(Object.isFrozen(values) && Object.isFrozen(values.compaction));
    assert.deepEqual(
      TEST_OPTIONS.keys.map((key) => key.name),
      ['periodMs', 'sizeBytes', 'mode', 'compaction.enabled', 'compaction.minIntervalMs'],
    );
  });

  it('takes what is given, in a group too, and treats undefined as not given', () => {
    const values = TEST_OPTIONS.resolve({ periodMs: 5, mode: undefined, compaction: { enabled: true } }, {});
    assert.equal(values.periodMs, 5);
    assert.equal(values.mode, 'safe');
    assert.deepEqual(values.compaction, { enabled: true, minIntervalMs: 60_000 });
  });

  it('throws TypeError for a value of the wrong type, naming the option', () => {
    assert.throws(() => TEST_OPTIONS.resolve({ periodMs: '5' as unknown as number }, {}), {
      name: 'TypeError',
      message: 'options.periodMs must be a positive integer, got 5',
    });
    assert.throws(() => TEST_OPTIONS.resolve({ compaction: { enabled: 'yes' as unknown as boolean } }, {}), {
      name: 'TypeError',
      message: 'options.compaction.enabled must be a boolean (true or false), got yes',
    });
    assert.throws(() => TEST_OPTIONS.resolve({ compaction: 3 as unknown as { enabled: boolean } }, {}), {
      name: 'TypeError',
      message: 'options.compaction must be an object, got 3',
    });
  });

  it('throws RangeError for a value out of range, naming the option', () => {
    for (const [input, message] of [
      [{ periodMs: 0 }, 'options.periodMs must be a positive integer, got 0'],
      [{ periodMs: 1.5 }, 'options.periodMs must be a positive integer, got 1.5'],
      [{ periodMs: 2 ** 53 }, `options.periodMs must be a positive integer, got ${2 ** 53}`],
      [{ sizeBytes: 100 }, 'options.sizeBytes must be an integer from 4096 to 65536, got 100'],
      [{ sizeBytes: 65537 }, 'options.sizeBytes must be an integer from 4096 to 65536, got 65537'],
      [{ mode: 'slow' }, 'options.mode must be one of fast, safe, got slow'],
    ] as const) {
      assert.throws(() => TEST_OPTIONS.resolve(input as never, {}), { name: 'RangeError', message });
    }
  });

  it('reports a rule across options on the option it belongs to, naming the others', () => {
    assert.throws(() => TEST_OPTIONS.resolve({ periodMs: 90_000 }, {}), {
      name: 'RangeError',
      message: 'options.compaction.minIntervalMs must be at least periodMs (90000 here), got 60000',
    });
    const issues = TEST_OPTIONS.ruleIssues({ ...TEST_OPTIONS.defaults, periodMs: 90_000 }, (name) => name.toUpperCase());
    assert.deepEqual(issues, [{ key: 'compaction.minIntervalMs', value: 60_000, expected: 'at least PERIODMS (90000 here)', isWrongType: false }]);
  });

  it('names the describing prefix the caller chooses', () => {
    assert.throws(() => TEST_OPTIONS.resolve({ periodMs: -1 }, {}, (key) => `test option ${key}`), /^RangeError: test option periodMs must be/);
  });

  it('refuses a declaration whose default fails its own check, or a rule on no option', () => {
    assert.throws(() => new OptionSet({ bad: integerOption({ ...doc, default: 0 }) }), /default of option bad is not a positive integer/);
    assert.throws(
      () => new OptionSet({ a: textOption({ ...doc, default: 'x' }) }, [{ key: 'b', describe: () => '', check: () => undefined }]),
      /a rule names b, which is not an option/,
    );
  });
});

describe('mergeDeclarations', () => {
  it('joins declarations in order and refuses a name declared twice', () => {
    const a = { one: textOption({ ...doc, default: 'x' }) };
    const b = { two: booleanOption({ ...doc, default: true }) };
    assert.deepEqual(Object.keys(mergeDeclarations(a, b)), ['one', 'two']);
    assert.throws(() => mergeDeclarations(a, b, { one: integerOption({ ...doc, default: 1 }) }), /option one is declared twice/);
  });
});

describe('readOptionText', () => {
  it('reads integers and booleans from text and keeps text that does not read', () => {
    assert.equal(readOptionText('42', 'integer'), 42);
    assert.equal(readOptionText('-3', 'integer'), -3);
    assert.equal(readOptionText('10ms', 'integer'), '10ms');
    assert.equal(readOptionText('1e3', 'integer'), '1e3');
    assert.equal(readOptionText('true', 'boolean'), true);
    assert.equal(readOptionText('0', 'boolean'), false);
    assert.equal(readOptionText('yes', 'boolean'), 'yes');
    assert.equal(readOptionText('42', 'string'), '42');
  });
});
