/**
 * Every code the client's errors and results carry, with the exit code a
 * run gets from it and its meaning in one line. `docs/errors.md` lists the
 * same codes: test/docs/errors.test.ts fails when the two drift apart or a
 * code is used that is not here. Codes of the system (ENOENT, ECONNRESET…)
 * and of undici (UND_ERR_…) pass through as they are.
 */
export const CLIENT_CODES = {
  // Usage errors: the run never starts.
  IMGPUSH_USAGE: { exit: 2, meaning: 'a flag or option is missing, malformed or contradicts another; the message names it' },
  IMGPUSH_NO_INPUT: { exit: 2, meaning: 'no files, folders, globs or list were named' },
  IMGPUSH_NOTHING_FOUND: { exit: 2, meaning: 'the inputs hold no file with the extensions looked for' },
  IMGPUSH_INPUT_NOT_FOUND: { exit: 2, meaning: 'an input named on the command line does not exist or cannot be read' },
  IMGPUSH_BAD_URL: { exit: 2, meaning: '--url is not an http(s) URL, holds credentials or an unknown placeholder, or names a server twice' },
  IMGPUSH_BAD_TEMPLATE: { exit: 2, meaning: '--template is not valid JSON once filled, or misplaces {base64}' },
  IMGPUSH_BAD_LOG_PATH: { exit: 2, meaning: 'the folder of --out or --failures does not exist or cannot be written' },
  IMGPUSH_BAD_FAILURE_LOG: { exit: 2, meaning: 'the file given to imgpush retry is not a failure log imgpush can read' },
  IMGPUSH_BAD_RESULTS_LOG: { exit: 2, meaning: 'a --skip-done file is not a results log, or cannot be read' },
  IMGPUSH_BAD_TLS_FILE: { exit: 2, meaning: '--cacert, --cert or --key cannot be read, holds no PEM, is encrypted, or the key does not match' },
  IMGPUSH_SHARP_MISSING: { exit: 2, meaning: '--resize, --format or --quality need sharp, which is not installed or does not load' },
  // A file's failure: it is in the failure log, and the run exits 1.
  IMGPUSH_HTTP_STATUS: { exit: 1, meaning: 'the server answered with a status other than 2xx (the status is in the log line)' },
  IMGPUSH_MAX_TIME: { exit: 1, meaning: 'the request, answer included, took longer than --max-time' },
  IMGPUSH_NETWORK: { exit: 1, meaning: 'no answer, for a reason the system gave no code for' },
  IMGPUSH_BAD_ANSWER: { exit: 1, meaning: 'an http:// server\'s answer is not HTTP/1.1: not a status line (another protocol on that port?), malformed headers or chunks, conflicting lengths, headers over 16 KB' },
  IMGPUSH_TLS: { exit: 1, meaning: 'the TLS handshake failed: a certificate not trusted, expired, for another host, or refused' },
  IMGPUSH_PROXY: { exit: 1, meaning: 'the proxy refused to connect to the server' },
  IMGPUSH_PROXY_AUTH: { exit: 1, meaning: 'the proxy asked for a user and password (407)' },
  IMGPUSH_FILE_READ: { exit: 1, meaning: 'the file could not be read, for a reason the system gave no code for' },
  IMGPUSH_FILE_CHANGED: { exit: 1, meaning: 'the file changed (size, modification or change time) after it was found or while it was sent: never logged uploaded; imgpush retry sends it as it then is' },
  IMGPUSH_NOT_A_FILE: { exit: 1, meaning: 'the path is a device, socket or pipe, not a regular file' },
  IMGPUSH_FOLDER_UNREADABLE: { exit: 1, meaning: 'a folder could not be listed: nothing under it was sent' },
  IMGPUSH_NAME_NOT_UTF8: { exit: 1, meaning: 'a file or folder name is not valid UTF-8: imgpush cannot name it yet (rename it and send it again)' },
  IMGPUSH_SAME_TARGET: { exit: 1, meaning: 'a per-file --url ({path}, {name}…) gives this file the URL of another file of the run: it is not sent over it' },
  IMGPUSH_BROKEN_LINK: { exit: 1, meaning: 'a symbolic link whose target does not exist' },
  IMGPUSH_REENCODE_FAILED: { exit: 1, meaning: 'sharp could not decode or encode the file (--resize, --format)' },
  IMGPUSH_ANSWER_LOST: { exit: 1, meaning: 'the request reached the server whole (or its 2xx status came), then the answer was lost: the server may have taken the file; it is retried, and imgpush retry sends it again (at least once)' },
  IMGPUSH_INTERRUPTED: { exit: 1, meaning: 'the run was stopped (a signal, --max-failures, --max-outage, a server that never answered or refused every file alike) before the file was done' },
  IMGPUSH_NOT_LISTED: { exit: 1, meaning: 'a folder, glob or input the stopped run had not walked to its end; imgpush retry walks it again' },
  IMGPUSH_NOT_A_JOB: { exit: 1, meaning: '--async: the server answered without a Location header, so there is no job to poll' },
  IMGPUSH_JOB_GONE: { exit: 1, meaning: '--async: the server no longer knows the job (expired)' },
  IMGPUSH_JOB_FAILED: { exit: 1, meaning: '--async: the job failed on the server' },
  IMGPUSH_INTERNAL: { exit: 1, meaning: 'an unexpected error; --verbose shows where' },
  // The run as a whole.
  IMGPUSH_LOG_WRITE: { exit: 4, meaning: 'a log could not be written: the run stops, its summary says why, and the lines the log could not take go to imgpush-unlogged-….jsonl (else stderr)' },
  // Skips: the file was not sent on purpose; the run's exit code does not change.
  IMGPUSH_EXCLUDED: { exit: 0, meaning: 'a file named outright that matches --exclude' },
  IMGPUSH_SAME_FILE: { exit: 0, meaning: 'a second name of a file already found (a hard link, a symlink, overlapping inputs): sent once, under its first name' },
  IMGPUSH_DONE_BEFORE: { exit: 0, meaning: 'uploaded by an earlier run and unchanged since (--skip-done)' },
} as const satisfies Readonly<Record<string, { readonly exit: 0 | 1 | 2 | 4; readonly meaning: string }>>;
