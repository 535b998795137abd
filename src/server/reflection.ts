import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { status as Status, type Server, type ServerDuplexStream } from '@grpc/grpc-js';
import {
  ServerReflectionService as V1ReflectionService,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  type ServerReflectionServer as V1ReflectionServer,
} from '../gen/grpc/reflection/v1/reflection.js';
import {
  ServerReflectionService as V1AlphaReflectionService,
  type ServerReflectionServer as V1AlphaReflectionServer,
} from '../gen/grpc/reflection/v1alpha/reflection.js';
import type { DescriptorIndex } from './descriptor-index.js';

/** The full names of the two reflection services, which {@link addReflection} registers and lists. */
export const REFLECTION_SERVICE_NAMES = ['grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection'] as const;

/**
 * Where `buf build` puts the FileDescriptorSet, relative to this module: beside the generated
 * stubs when running from `src/`, and in the source tree when running from `dist/src/server/`
 * (`tsc` does not copy it).
 */
const DESCRIPTOR_SET_CANDIDATES = ['../gen/wald.binpb', '../../../src/gen/wald.binpb'];

/**
 * Reads the FileDescriptorSet that `scripts/gen.sh` builds with buf (wald's protos, the vendored
 * health, reflection and google.rpc protos, and their imports).
 *
 * @throws Error naming the paths tried when the file is missing (run `npm run gen`).
 */
export function loadDescriptorSet(): Buffer {
  const tried: string[] = [];
  for (const candidate of DESCRIPTOR_SET_CANDIDATES) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) {
      return readFileSync(path);
    }
    tried.push(path);
  }
  throw new Error(`the descriptor set wald.binpb was not found (tried ${tried.join(', ')}); run npm run gen`);
}

/** What {@link addReflection} serves. */
export interface ReflectionInit {
  /** Every file a client may ask for: those of the services listed, their imports, and the reflection protos. */
  readonly descriptors: DescriptorIndex;
  /** The services the server registers besides reflection, as `list_services` reports them. */
  readonly serviceNames: readonly string[];
}

/**
 * Answers one reflection request. Every answer echoes the request (`original_request`, and its
 * host as `valid_host`); a name the descriptor set does not know is an `error_response` with
 * `NOT_FOUND`, and a request kind this server does not know (or none) one with `UNIMPLEMENTED`,
 * so that the stream stays usable either way.
 */
export function answerReflectionRequest(
  request: ServerReflectionRequest,
  descriptors: DescriptorIndex,
  serviceNames: readonly string[],
): ServerReflectionResponse {
  const answer = (messageResponse: ServerReflectionResponse['messageResponse']): ServerReflectionResponse => ({
    validHost: request.host,
    originalRequest: request,
    messageResponse,
  });
  const files = (found: Buffer[] | undefined, what: string): ServerReflectionResponse =>
    found === undefined
      ? answer({ $case: 'errorResponse', value: { errorCode: Status.NOT_FOUND, errorMessage: `${what} not found` } })
      : answer({ $case: 'fileDescriptorResponse', value: { fileDescriptorProto: found } });
  const asked = request.messageRequest;
  switch (asked?.$case) {
    case 'listServices':
      return answer({ $case: 'listServicesResponse', value: { service: serviceNames.map((name) => ({ name })) } });
    case 'fileByFilename':
      return files(descriptors.fileByName(asked.value), `file ${asked.value}`);
    case 'fileContainingSymbol':
      return files(descriptors.fileContainingSymbol(asked.value), `symbol ${asked.value}`);
    case 'fileContainingExtension': {
      const { containingType, extensionNumber } = asked.value;
      return files(descriptors.fileContainingExtension(containingType, extensionNumber), `extension ${extensionNumber} of ${containingType}`);
    }
    case 'allExtensionNumbersOfType': {
      const numbers = descriptors.extensionNumbersOf(asked.value);
      return numbers === undefined
        ? answer({ $case: 'errorResponse', value: { errorCode: Status.NOT_FOUND, errorMessage: `message type ${asked.value} not found` } })
        : answer({ $case: 'allExtensionNumbersResponse', value: { baseTypeName: asked.value, extensionNumber: numbers } });
    }
    case undefined:
      return answer({ $case: 'errorResponse', value: { errorCode: Status.UNIMPLEMENTED, errorMessage: 'the request names no kind this server implements' } });
  }
}

/** A handler of `ServerReflectionInfo`, for either version of the service. */
export type ReflectionHandler = (call: ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>) => void;

/**
 * The `ServerReflectionInfo` handler: answers each request in order on the same stream, and
 * ends the stream when the client does. While the call's write buffer is full (a client that
 * sends without reading) it stops reading requests, so the answers queued stay bounded.
 *
 * @throws Error when a listed service is not in the descriptor set.
 */
export function createReflectionHandler(init: ReflectionInit): ReflectionHandler {
  const serviceNames = [...init.serviceNames, ...REFLECTION_SERVICE_NAMES];
  const missing = serviceNames.filter((name) => !init.descriptors.hasService(name));
  if (missing.length > 0) {
    throw new Error(`reflection: the descriptor set lacks the services ${missing.join(', ')}; run npm run gen`);
  }
  return (call) => {
    call.on('data', (request: ServerReflectionRequest) => {
      if (!call.write(answerReflectionRequest(request, init.descriptors, serviceNames))) {
        call.pause();
        call.once('drain', () => call.resume());
      }
    });
    call.on('end', () => call.end());
  };
}

/**
 * Serves gRPC server reflection, `grpc.reflection.v1.ServerReflection` and its older twin
 * `grpc.reflection.v1alpha.ServerReflection` (the same messages in another package), from buf's
 * descriptor set: file answers are buf's own FileDescriptorProto bytes, each with its transitive
 * imports, in every response. The protocol allows leaving out files sent earlier on the stream;
 * wald's largest answer is about 40 KiB, so the handler keeps no per-stream state and every
 * answer stands alone (a client that opens a stream per question works as well).
 *
 * Why not `@grpc/reflection`: it serves descriptors that protobufjs re-creates from its own
 * parse, which differ from protoc's (map entries named `Statuses` instead of `StatusesEntry`),
 * and Go clients (buf curl, grpcurl) reject them; feeding it buf's bytes meant overwriting its
 * private fields.
 *
 * @throws Error when a listed service is not in the descriptor set.
 */
export function addReflection(server: Server, init: ReflectionInit): void {
  const serverReflectionInfo = createReflectionHandler(init);
  const v1: V1ReflectionServer = { serverReflectionInfo };
  // The v1alpha messages have v1's fields and numbers, so the v1 handler type-checks against them.
  const v1alpha: V1AlphaReflectionServer = { serverReflectionInfo };
  server.addService(V1ReflectionService, v1);
  server.addService(V1AlphaReflectionService, v1alpha);
}
