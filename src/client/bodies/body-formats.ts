import type { BodyFormat } from './body-format.js';
import { InferenceBody } from './inference-body.js';
import { JsonBody } from './json-template.js';
import { MultipartBody } from './multipart.js';
import { DEFAULTS } from '../options/declarations.js';
import type { ResolvedOptions } from '../options/types.js';
import { RawBody } from './raw-body.js';

/** The body format --body names, set up from the run's options. */
export function bodyFormatFor({ body, field, form, inputName, jsonTemplate }: ResolvedOptions): BodyFormat {
  switch (body) {
    case 'multipart': return new MultipartBody(field, form);
    case 'v2': return new InferenceBody(inputName ?? DEFAULTS.inputName);
    case 'json': return new JsonBody(jsonTemplate as NonNullable<typeof jsonTemplate>);
    case 'raw': return new RawBody();
  }
}
