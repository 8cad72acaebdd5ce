/**
 * `c1m bench million --tls`: a throwaway certificate for the run. An ECDSA P-256 certificate
 * for 127.0.0.1 (and localhost), made with the `openssl` command in a private temporary
 * directory; the server is started with it (`--tls-cert`/`--tls-key`) and the clients trust
 * exactly it, so every connection is a full, verified handshake. Removed when the run ends.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchCert {
  certFile: string;
  keyFile: string;
  /** The certificate's PEM text (the clients' only trusted certificate). */
  certPem: string;
  /** Remove the directory; safe to call more than once. */
  remove(): void;
}

/** Make the certificate. Errors: throws when `openssl` is missing or fails. */
export function makeBenchCert(): BenchCert {
  const dir = mkdtempSync(join(tmpdir(), 'c1m-million-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=c1m bench', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`--tls: could not make a certificate with openssl: ${r.error?.message ?? r.stderr.trim()}`);
  }
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
