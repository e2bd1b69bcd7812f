/**
 * The reference server's defaults, in one place: `imgpush serve` takes its
 * flags' defaults and help from here, and the server falls back on them.
 * Plain constants only: the CLI imports this for --help, which must not
 * load fastify, sharp or onnxruntime-node.
 */
export const SERVER_DEFAULTS = {
  model: 'builtin:colors',
  device: 'auto',
  host: '127.0.0.1',
  port: 8000,
  /**
   * Run a batch once this many images wait… On CPU a batch costs the same per image whatever its size, and its
   * images all wait for the last: at 16 (about 100 ms of builtin:synthetic) p99 rose by some 40 ms over 8 or less.
   */
  maxBatch: 8,
  /**
   * …or once the oldest has waited this long. None by default: on CPU a batch costs the same per image as
   * single runs (builtin:synthetic, one thread: 6.2 ms at batch 1, 6.0 at 16), so waiting only adds latency;
   * while a batch runs the next one fills by itself. On a GPU a few ms let batches fill at low load.
   */
  batchDelayMs: 0,
  /**
   * Images accepted and not yet answered, decoded or not: beyond, 429 with Retry-After. Eight batches of the
   * default --max-batch: enough to keep batches full, and what waits here waits a few batch times, not seconds.
   */
  queueLimit: 64,
  batchConcurrency: 1,
  maxFileSize: 25 * 1024 ** 2,
  maxFiles: 64,
  /** Any request's body, on every route: Triton's --http-max-input-size default. */
  maxBodySize: 64 * 1024 ** 2,
  /** Bytes of bodies being read or held at once, by their Content-Length. */
  maxBodyBytesInFlight: 256 * 1024 ** 2,
  /**
   * Width × height from an image's header. JPEG and WebP decode at a fraction of their size
   * (shrink-on-load) and PNG row by row, but AVIF, HEIF, TIFF and GIF whole: some 17 bytes a pixel.
   * 25 M (a 24 MP camera's 6000×4000) keeps one such decode near 450 MB; a 10000×10000 bomb is refused.
   */
  maxPixels: 25_000_000,
  decodeTimeoutMs: 5_000,
  /** libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise: one stays free for file I/O and DNS. */
  maxDecodes: 3,
  cacheSize: 10_000,
  requestTimeoutMs: 120_000,
  headerTimeoutMs: 10_000,
  jobTtlMs: 60 * 60_000,
  maxJobs: 10_000,
  logLevel: 'info',
  /** A body must keep arriving at this rate, judged over each window (a modem's 56 kbit/s is 7 KB/s). */
  minBodyRate: 1024,
  bodyRateWindowMs: 5_000,
  /** Connections open at once; beyond, Node drops new ones. */
  maxConnections: 4096,
  /** From SIGTERM: requests and jobs in flight get this long, then are cut (below Kubernetes' 30 s grace). */
  shutdownTimeoutMs: 25_000,
  /** From SIGTERM, readiness is false this long before the listener closes, so load balancers stop sending. */
  drainDelayMs: 2_000,
  /** Above common load balancers' idle timeouts (60 s), so that the server is never the one to close an idle connection first. */
  keepAliveTimeoutMs: 65_000,
  /** Connections waiting to be accepted; the kernel caps it at net.core.somaxconn (4096 on recent Linux). */
  listenBacklog: 4096,
} as const;

/** A job's callback: tries, the wait before the second (doubling after), and how long one try may take. */
export const CALLBACK_DELIVERY = { attempts: 3, firstDelayMs: 500, timeoutMs: 10_000, lastTryTimeoutMs: 1000 } as const;
