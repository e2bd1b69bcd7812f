import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: from a cache hit (sub-millisecond) to a slow batch. */
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The server's Prometheus metrics, in one registry of its own (not the process-global one). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'imgpush_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [this.registry] });
  readonly requestSeconds = new Histogram({ name: 'imgpush_http_request_duration_seconds', help: 'HTTP request duration by route', labelNames: ['route'], buckets: SECONDS, registers: [this.registry] });
  readonly uploadBytes = new Counter({ name: 'imgpush_upload_bytes_total', help: 'Bytes of images received', registers: [this.registry] });
  readonly imagesDecoded = new Counter({ name: 'imgpush_images_decoded_total', help: 'Images decoded and resized', registers: [this.registry] });
  readonly decodeSeconds = new Histogram({ name: 'imgpush_decode_seconds', help: 'Time to decode and resize one image', buckets: SECONDS, registers: [this.registry] });
  readonly queueSeconds = new Histogram({ name: 'imgpush_queue_wait_seconds', help: 'Time an image waited for its batch', buckets: SECONDS, registers: [this.registry] });
  readonly inferenceSeconds = new Histogram({ name: 'imgpush_inference_seconds', help: 'Time to run one batch', buckets: SECONDS, registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'imgpush_batch_size', help: 'Images per batch', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'imgpush_queue_depth', help: 'Images accepted and not yet answered, decoded or not', registers: [this.registry] });
  readonly decodesRunning = new Gauge({ name: 'imgpush_decodes_running', help: 'Images being decoded now (at most --max-decodes)', registers: [this.registry] });
  readonly decodesWaiting = new Gauge({ name: 'imgpush_decodes_waiting', help: 'Images waiting for a decode slot (--max-decodes)', registers: [this.registry] });
  readonly bodyBytesInFlight = new Gauge({ name: 'imgpush_body_bytes_in_flight', help: 'Bytes of request bodies being read or held, by Content-Length', registers: [this.registry] });
  readonly cache = new Counter({ name: 'imgpush_cache_lookups_total', help: 'Result cache lookups by result', labelNames: ['result'], registers: [this.registry] });
  readonly modelInfo = new Gauge({ name: 'imgpush_model_info', help: 'The model served (always 1)', labelNames: ['name', 'device'], registers: [this.registry] });
}
