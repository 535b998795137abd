import { WalError } from '../errors.js';

/**
 * The proto name of a field the engine names in its TypeScript terms: `producerId` ->
 * `producer_id`, `records[3].headers` unchanged. The engine's names are those of its API, which
 * are the generated (lowerCamelCase) names of the same proto fields, so the proto name is the
 * standard snake_case of each part. A unit test checks every field the engine names against the
 * descriptors of `AppendRequest` and `AppendRecord`.
 */
export function wireFieldName(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * `error` as a gRPC client should see it: a `field` in its details (and at the start of its
 * message) in proto terms. Errors without a field, or with a proto name already, are returned
 * as they are.
 */
export function inWireTerms(error: WalError): WalError {
  const field = error.details['field'];
  if (typeof field !== 'string') {
    return error;
  }
  const wireField = wireFieldName(field);
  if (wireField === field) {
    return error;
  }
  const message = error.message.startsWith(`${field}: `) ? `${wireField}: ${error.message.slice(field.length + 2)}` : error.message;
  return new WalError(error.code, message, { ...error.details, field: wireField }, { cause: error });
}
