export { push, type PushHooks, type PushSummary, type Progress, type FileResult } from './push.js';
export { retry, type RetryOverrides } from './retry.js';
export { DEFAULTS, type PushOptions, type RequestSettings, type BodyMode, type Method, type Pairs } from './options.js';
export type { ListedFile } from './discover.js';
export { readPathList, readPathListFile } from './path-list.js';
export type { FailureRecord, FailureLogHeader } from './failure-log.js';
export type { LatencySummary } from './latency.js';
export { ImgpushError, UsageError } from '../shared/errors.js';
export { HttpStatusError, NetworkError, FileReadError, FileChangedError, InterruptedError } from './errors.js';
