/**
 * Every error a user can see is an ImgpushError: a stable `code` to match on
 * (in the manner of undici's `UND_ERR_…`) and a message in plain words.
 */
export class ImgpushError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Bad flags or inputs: the run never starts (exit code 2). The code comes first, as in every error of the project. */
export class UsageError extends ImgpushError {
  constructor(code: `IMGPUSH_${string}`, message: string) {
    super(code, message);
  }
}
