import { decodeAnswer, listedAnswers, wholeAnswer, type BodyFile, type BodyFormat, type Envelope } from './body-format.js';

/** --body raw: the file's bytes alone, under their own content type. */
export class RawBody implements BodyFormat {
  envelope({ type }: BodyFile): Envelope {
    return { head: undefined, tail: undefined, base64: false, contentType: type };
  }

  readonly decode = decodeAnswer;
  readonly single = wholeAnswer;
  readonly perFile = listedAnswers;
}
