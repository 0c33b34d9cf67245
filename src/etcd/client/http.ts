// HTTP to a temporary etcd for bulk work (thousands of requests): kept-alive connections, a JSON
// body or a streamed one. probe.ts stays the one-shot client for probes.
import http from 'node:http';
import https from 'node:https';
import { StepError } from '../../errors.ts';
import { httpsOptions } from '../tls/load.ts';
import type { ClientTls } from '../tls/config.ts';

export interface HttpClient {
  readonly endpoint: string;
  /** The whole answer as text; for small answers (a v3 page, a v2 write). */
  text: (
    method: string,
    path: string,
    body?: string,
  ) => Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>;
  /** The answer as a stream of UTF-8 text chunks, for answers that may not fit in memory. */
  stream: (method: string, path: string) => Promise<{ status: number; chunks: AsyncIterable<string> }>;
  close: () => void;
}

const TIMEOUT_MS = 120_000;

/** `tls`: for an https endpoint (a temporary etcd whose ETCD_CREDS give a server certificate). */
export function httpClient(endpoint: string, maxSockets = 32, tls?: ClientTls): HttpClient {
  const secure = endpoint.startsWith('https:');
  if (secure && !tls) throw new Error(`${endpoint} is https, but no client TLS material was given`);
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets, ...httpsOptions(tls!) })
    : new http.Agent({ keepAlive: true, maxSockets });
  const open = (method: string, path: string, body?: string, retried = false): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(
        new URL(path, endpoint),
        { method, agent, timeout: TIMEOUT_MS },
        resolve,
      );
      req.on('timeout', () =>
        req.destroy(
          new StepError(`${method} ${path.split('?')[0]} on the temporary etcd: no answer in ${TIMEOUT_MS / 1000} s`),
        ),
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        // A kept-alive connection that the server closed just as the request went out: the request
        // never reached it, so sending it again on a new connection is safe (Node's documented pattern).
        if (!retried && req.reusedSocket && e.code === 'ECONNRESET')
          open(method, path, body, true).then(resolve, reject);
        else reject(e);
      });
      if (body !== undefined) {
        req.setHeader(
          'content-type',
          path.startsWith('/v3') ? 'application/json' : 'application/x-www-form-urlencoded',
        );
        req.end(body);
      } else req.end();
    });
  return {
    endpoint,
    async text(method, path, body) {
      const res = await open(method, path, body);
      res.setEncoding('utf8');
      let text = '';
      for await (const c of res) text += c as string;
      return { status: res.statusCode ?? 0, body: text, headers: res.headers };
    },
    async stream(method, path) {
      const res = await open(method, path);
      res.setEncoding('utf8');
      return { status: res.statusCode ?? 0, chunks: res as AsyncIterable<string> };
    },
    close: () => agent.destroy(),
  };
}

/** Runs `fn` with a client for `endpoint`, closing its connections afterwards. */
export async function withClient<T>(endpoint: string, fn: (c: HttpClient) => Promise<T>, tls?: ClientTls): Promise<T> {
  const c = httpClient(endpoint, 32, tls);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}
