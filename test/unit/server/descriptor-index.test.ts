import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { DescriptorIndex, splitDescriptorSet } from '../../../src/server/descriptor-index.js';
import { loadDescriptorSet } from '../../../src/server/reflection.js';

const optionalInt32 = (name: string, number: number, extra: object = {}) => ({ name, number, label: Label.OPTIONAL, type: Type.INT32, ...extra });

/**
 * Three proto2 files with every kind of symbol reflection resolves: base.proto (an extendable
 * message, an enum), mid.proto (imports base: nested message, nested enum, oneof, map field, a
 * nested extension of base's message), top.proto (imports mid and base, a diamond: a top-level
 * extension, a service and its method).
 */
function syntheticFiles(): FileDescriptorProto[] {
  const base = create(FileDescriptorProtoSchema, {
    name: 'base.proto',
    package: 't.base',
    messageType: [{ name: 'Extendable', extensionRange: [{ start: 100, end: 200 }] }],
    enumType: [{ name: 'Color', value: [{ name: 'COLOR_RED', number: 0 }] }],
  });
  const mid = create(FileDescriptorProtoSchema, {
    name: 'mid.proto',
    package: 't.mid',
    dependency: ['base.proto'],
    messageType: [
      {
        name: 'Holder',
        field: [
          optionalInt32('a', 1, { oneofIndex: 0 }),
          { name: 'labels', number: 2, label: Label.REPEATED, type: Type.MESSAGE, typeName: '.t.mid.Holder.LabelsEntry' },
          { name: 'color', number: 3, label: Label.OPTIONAL, type: Type.ENUM, typeName: '.t.base.Color' },
        ],
        oneofDecl: [{ name: 'choice' }],
        nestedType: [
          { name: 'Inner', field: [optionalInt32('x', 1)] },
          {
            name: 'LabelsEntry',
            field: [
              { name: 'key', number: 1, label: Label.OPTIONAL, type: Type.STRING },
              { name: 'value', number: 2, label: Label.OPTIONAL, type: Type.STRING },
            ],
            options: { mapEntry: true },
          },
        ],
        enumType: [{ name: 'Kind', value: [{ name: 'KIND_A', number: 0 }] }],
        extension: [optionalInt32('nested_ext', 101, { extendee: '.t.base.Extendable' })],
      },
    ],
  });
  const top = create(FileDescriptorProtoSchema, {
    name: 'top.proto',
    package: 't.top',
    dependency: ['mid.proto', 'base.proto'],
    extension: [optionalInt32('top_ext', 100, { extendee: '.t.base.Extendable' })],
    service: [{ name: 'Svc', method: [{ name: 'Do', inputType: '.t.mid.Holder', outputType: '.t.mid.Holder' }] }],
  });
  return [base, mid, top];
}

function setOf(files: FileDescriptorProto[]): Uint8Array {
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files }));
}

/** The file names of an answer, matched against the exact bytes of the set. */
function namesOf(answer: Buffer[] | undefined, set: Uint8Array): string[] | undefined {
  if (answer === undefined) {
    return undefined;
  }
  const exact = [...splitDescriptorSet(set)];
  return answer.map((bytes) => {
    const match = exact.find(([, each]) => Buffer.compare(Buffer.from(each), bytes) === 0);
    assert.ok(match !== undefined, 'an answered file is byte-equal to one in the set');
    return match[0];
  });
}

describe('DescriptorIndex', () => {
  const set = setOf(syntheticFiles());
  const index = new DescriptorIndex(set);

  test('answers a file by name with its transitive imports, breadth first, each once', () => {
    assert.deepEqual(namesOf(index.fileByName('top.proto'), set), ['top.proto', 'mid.proto', 'base.proto']);
    assert.deepEqual(namesOf(index.fileByName('mid.proto'), set), ['mid.proto', 'base.proto']);
    assert.deepEqual(namesOf(index.fileByName('base.proto'), set), ['base.proto']);
    assert.equal(index.fileByName('top'), undefined);
    assert.equal(index.fileByName('nope.proto'), undefined);
  });

  test('finds the file declaring each kind of symbol', () => {
    const expected: Record<string, string> = {
      't.base.Extendable': 'base.proto',
      't.base.Color': 'base.proto',
      't.base.COLOR_RED': 'base.proto',
      't.mid.Holder': 'mid.proto',
      't.mid.Holder.a': 'mid.proto',
      't.mid.Holder.labels': 'mid.proto',
      't.mid.Holder.choice': 'mid.proto',
      't.mid.Holder.Inner': 'mid.proto',
      't.mid.Holder.Inner.x': 'mid.proto',
      't.mid.Holder.LabelsEntry': 'mid.proto',
      't.mid.Holder.Kind': 'mid.proto',
      't.mid.Holder.KIND_A': 'mid.proto',
      't.mid.Holder.nested_ext': 'mid.proto',
      't.top.top_ext': 'top.proto',
      't.top.Svc': 'top.proto',
      't.top.Svc.Do': 'top.proto',
    };
    for (const [symbol, file] of Object.entries(expected)) {
      assert.equal(namesOf(index.fileContainingSymbol(symbol), set)?.[0], file, symbol);
    }
  });

  test('knows no symbol that is not fully qualified or not declared', () => {
    for (const symbol of ['Holder', '.t.mid.Holder', 't.mid.Holder.Nope', 't.mid.Holder.Kind.KIND_A', 't.top', 't', '']) {
      assert.equal(index.fileContainingSymbol(symbol), undefined, symbol);
    }
  });

  test('finds extensions by the message they extend and their field number', () => {
    assert.deepEqual(namesOf(index.fileContainingExtension('t.base.Extendable', 100), set), ['top.proto', 'mid.proto', 'base.proto']);
    assert.deepEqual(namesOf(index.fileContainingExtension('t.base.Extendable', 101), set), ['mid.proto', 'base.proto']);
    assert.equal(index.fileContainingExtension('t.base.Extendable', 102), undefined);
    assert.equal(index.fileContainingExtension('t.mid.Holder', 100), undefined);
    assert.deepEqual(index.extensionNumbersOf('t.base.Extendable'), [100, 101]);
    assert.deepEqual(index.extensionNumbersOf('t.mid.Holder'), []);
    assert.equal(index.extensionNumbersOf('t.base.Color'), undefined, 'an enum has no extensions to list');
    assert.equal(index.extensionNumbersOf('t.nope'), undefined);
  });

  test('knows the services of the set', () => {
    assert.equal(index.hasService('t.top.Svc'), true);
    assert.equal(index.hasService('t.mid.Holder'), false);
  });

  test('rejects a set missing an import, or declaring a symbol twice', () => {
    const [base, mid] = syntheticFiles();
    assert.throws(() => new DescriptorIndex(setOf([mid!])), /base\.proto/);
    const twin = create(FileDescriptorProtoSchema, { name: 'twin.proto', package: 't.base', enumType: [{ name: 'Other', value: [{ name: 'COLOR_RED', number: 0 }] }] });
    assert.throws(() => new DescriptorIndex(setOf([base!, twin])), /t\.base\.COLOR_RED twice/);
  });

  test('indexes wald’s own descriptor set: contract, health, reflection, google.rpc and their imports', () => {
    const wald = loadDescriptorSet();
    const real = new DescriptorIndex(wald);
    const expected: Record<string, string> = {
      'wald.v1.WalService': 'wald/v1/wal_service.proto',
      'wald.v1.WalService.TailWal': 'wald/v1/wal_service.proto',
      'wald.v1.Record': 'wald/v1/record.proto',
      'wald.v1.Record.HeadersEntry': 'wald/v1/record.proto',
      'wald.v1.RECORD_TYPE_PUT': 'wald/v1/record.proto',
      'grpc.health.v1.Health.Watch': 'grpc/health/v1/health.proto',
      'grpc.health.v1.HealthCheckResponse.SERVING': 'grpc/health/v1/health.proto',
      'grpc.health.v1.HealthListResponse.StatusesEntry': 'grpc/health/v1/health.proto',
      'grpc.reflection.v1.ServerReflection': 'grpc/reflection/v1/reflection.proto',
      'grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo': 'grpc/reflection/v1alpha/reflection.proto',
      'google.rpc.ErrorInfo': 'google/rpc/error_details.proto',
      'google.protobuf.Any': 'google/protobuf/any.proto',
    };
    for (const [symbol, file] of Object.entries(expected)) {
      assert.equal(namesOf(real.fileContainingSymbol(symbol), wald)?.[0], file, symbol);
    }
    // Every file comes first in its own answer, followed by exactly its transitive imports, once each.
    const imports = new Map([...splitDescriptorSet(wald)].map(([name, bytes]) => [name, fromBinary(FileDescriptorProtoSchema, bytes).dependency]));
    const closure = (name: string, into = new Set<string>()): Set<string> => {
      for (const dependency of imports.get(name) ?? []) {
        if (!into.has(dependency)) {
          into.add(dependency);
          closure(dependency, into);
        }
      }
      return into;
    };
    for (const name of imports.keys()) {
      const [first, ...rest] = namesOf(real.fileByName(name), wald)!;
      assert.equal(first, name);
      assert.equal(new Set(rest).size, rest.length, `${name}: no file twice`);
      assert.deepEqual(new Set(rest), closure(name), `${name}: its transitive imports`);
    }
    assert.ok(
      [...imports].some(([name, direct]) => closure(name).size > direct.length),
      'some file needs imports of its imports (else this check proves less than it seems)',
    );
  });
});
