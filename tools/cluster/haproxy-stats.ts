import { connect } from 'node:net';

/** One server of HAProxy's `show stat`, as its health checks see it. */
export interface ServerState {
  /** `instance-1`… */
  name: string;
  /** `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/1` (coming up), `MAINT`, `no check`. */
  status: string;
  /** The last health check's outcome (`L7OK`, `L7STS` for a 503, `L4CON` for refused). */
  lastCheck: string;
}

const TIMEOUT_MS = 2_000;

/**
 * The servers of every backend, read from HAProxy's stats socket with `show stat` (CSV). One
 * connection per call, closed by HAProxy after the answer; bounded by a 2 s timeout.
 */
export function readServerStates(socketPath: string): Promise<ServerState[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.setEncoding('utf8');
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no answer on ${socketPath} within ${TIMEOUT_MS} ms`)));
    socket.on('connect', () => socket.end('show stat\n'));
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject);
    socket.on('close', (hadError) => {
      if (!hadError) resolve(parseShowStat(answer));
    });
  });
}

/** The server rows (not FRONTEND/BACKEND) of `show stat` output, whose header starts with `# `. */
function parseShowStat(csv: string): ServerState[] {
  const [header, ...rows] = csv.trim().split('\n');
  if (!header?.startsWith('# ')) return [];
  const columns = header.slice(2).split(',');
  const column = (name: string) => columns.indexOf(name);
  const [svname, status, checkStatus] = [column('svname'), column('status'), column('check_status')];
  return rows
    .map((row) => row.split(','))
    .filter((fields) => fields[svname] !== 'FRONTEND' && fields[svname] !== 'BACKEND')
    .map((fields) => ({ name: fields[svname] ?? '', status: fields[status] ?? '', lastCheck: fields[checkStatus] ?? '' }));
}
