import { ImgpushError } from '../shared/errors.js';

/** An error the server answers with: an HTTP status, a stable code, a message for the client. */
export class ServerError extends ImgpushError {
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    super(code, message);
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
