import { create, createFileRegistry, fromBinary, type DescFile, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from '@bufbuild/protobuf/wkt';

/** The serialized FileDescriptorProtos of a FileDescriptorSet, byte for byte, by file name, in set order. */
export function splitDescriptorSet(set: Uint8Array): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  const reader = new BinaryReader(set);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    // FileDescriptorSet has one field: `repeated FileDescriptorProto file = 1`.
    if (field === 1 && wireType === WireType.LengthDelimited) {
      const bytes = reader.bytes();
      files.set(fromBinary(FileDescriptorProtoSchema, bytes).name, bytes);
    } else {
      reader.skip(wireType);
    }
  }
  return files;
}

/**
 * The files and symbols of one FileDescriptorSet, as server reflection looks them up: each file
 * by name with its exact serialized bytes, and the file that declares each fully-qualified
 * symbol (package-level and nested messages, map entries, fields, oneofs, enums, enum values,
 * services, methods, extensions) or each extension of a message.
 *
 * Answers are the file first, then its transitive imports (each once), as serialized
 * FileDescriptorProtos taken from the set unchanged: a client needs the imports to resolve the
 * file, and Go clients (buf curl, grpcurl) reject re-encodings that differ from protoc's.
 */
export class DescriptorIndex {
  private readonly bytesByFile: Map<string, Buffer>;
  private readonly registry: FileRegistry;
  private readonly fileBySymbol = new Map<string, DescFile>();
  private readonly extensionsByType = new Map<string, Map<number, DescFile>>();

  /**
   * @param set a serialized `google.protobuf.FileDescriptorSet` holding every import of its files.
   * @throws Error when a file imports one missing from the set, a type reference does not resolve,
   *   or two files declare the same symbol.
   */
  constructor(set: Uint8Array) {
    const split = splitDescriptorSet(set);
    this.bytesByFile = new Map([...split].map(([name, bytes]) => [name, Buffer.from(bytes)]));
    const protos: FileDescriptorProto[] = [...split.values()].map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes));
    this.registry = createFileRegistry(create(FileDescriptorSetSchema, { file: protos }));
    for (const file of this.registry.files) {
      this.indexFile(file);
    }
  }

  /** Whether the set declares the service `name` (fully qualified, no leading dot). */
  hasService(name: string): boolean {
    return this.registry.getService(name) !== undefined;
  }

  /** The file `name` (such as `wald/v1/record.proto`) and its imports; undefined when not in the set. */
  fileByName(name: string): Buffer[] | undefined {
    const file = this.registry.getFile(name);
    return file === undefined ? undefined : this.withDependencies(file);
  }

  /** The file declaring `symbol` (fully qualified, such as `wald.v1.WalService.Append`) and its imports. */
  fileContainingSymbol(symbol: string): Buffer[] | undefined {
    const file = this.fileBySymbol.get(symbol);
    return file === undefined ? undefined : this.withDependencies(file);
  }

  /** The file declaring extension `fieldNumber` of message `typeName`, and its imports. */
  fileContainingExtension(typeName: string, fieldNumber: number): Buffer[] | undefined {
    const file = this.extensionsByType.get(typeName)?.get(fieldNumber);
    return file === undefined ? undefined : this.withDependencies(file);
  }

  /**
   * The field numbers of every extension of message `typeName` in the set, ascending (empty when
   * it has none); undefined when the set has no such message.
   */
  extensionNumbersOf(typeName: string): number[] | undefined {
    if (this.registry.getMessage(typeName) === undefined) {
      return undefined;
    }
    return [...(this.extensionsByType.get(typeName)?.keys() ?? [])].sort((a, b) => a - b);
  }

  private indexFile(file: DescFile): void {
    const scope = file.proto.package === '' ? '' : `${file.proto.package}.`;
    for (const message of file.messages) {
      this.indexMessage(file, message);
    }
    for (const enumeration of file.enums) {
      this.addSymbol(file, enumeration.typeName);
      // Enum values are scoped beside their enum, not inside it (protobuf's C++ scoping rule).
      for (const value of enumeration.values) {
        this.addSymbol(file, `${scope}${value.name}`);
      }
    }
    for (const extension of file.extensions) {
      this.indexExtension(file, extension.typeName, extension.extendee, extension.number);
    }
    for (const service of file.services) {
      this.addSymbol(file, service.typeName);
      for (const method of service.methods) {
        this.addSymbol(file, `${service.typeName}.${method.name}`);
      }
    }
  }

  private indexMessage(file: DescFile, message: DescMessage): void {
    this.addSymbol(file, message.typeName);
    for (const field of message.fields) {
      this.addSymbol(file, `${message.typeName}.${field.name}`);
    }
    for (const oneof of message.oneofs) {
      this.addSymbol(file, `${message.typeName}.${oneof.name}`);
    }
    // Map entries are real messages to protoc and Go clients, but not to the registry.
    for (const nested of message.proto.nestedType) {
      if (nested.options?.mapEntry === true) {
        this.addSymbol(file, `${message.typeName}.${nested.name}`);
      }
    }
    for (const nested of message.nestedMessages) {
      this.indexMessage(file, nested);
    }
    for (const enumeration of message.nestedEnums) {
      this.addSymbol(file, enumeration.typeName);
      for (const value of enumeration.values) {
        this.addSymbol(file, `${message.typeName}.${value.name}`);
      }
    }
    for (const extension of message.nestedExtensions) {
      this.indexExtension(file, extension.typeName, extension.extendee, extension.number);
    }
  }

  private indexExtension(file: DescFile, name: string, extendee: DescMessage, fieldNumber: number): void {
    this.addSymbol(file, name);
    let byNumber = this.extensionsByType.get(extendee.typeName);
    if (byNumber === undefined) {
      byNumber = new Map();
      this.extensionsByType.set(extendee.typeName, byNumber);
    }
    if (byNumber.has(fieldNumber)) {
      throw new Error(`the descriptor set extends ${extendee.typeName} twice with field ${fieldNumber}`);
    }
    byNumber.set(fieldNumber, file);
  }

  private addSymbol(file: DescFile, symbol: string): void {
    const earlier = this.fileBySymbol.get(symbol);
    if (earlier !== undefined) {
      throw new Error(`the descriptor set declares ${symbol} twice (${earlier.proto.name}, ${file.proto.name})`);
    }
    this.fileBySymbol.set(symbol, file);
  }

  /** `file`'s bytes, then those of its transitive imports, breadth first, each once. */
  private withDependencies(file: DescFile): Buffer[] {
    const order: DescFile[] = [file];
    const seen = new Set<string>([file.proto.name]);
    for (let i = 0; i < order.length; i++) {
      for (const dependency of order[i]!.dependencies) {
        if (!seen.has(dependency.proto.name)) {
          seen.add(dependency.proto.name);
          order.push(dependency);
        }
      }
    }
    return order.map((each) => this.bytesByFile.get(each.proto.name)!);
  }
}
