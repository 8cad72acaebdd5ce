/**
 * Test certificates made with the `openssl` command into a temporary directory, once per test
 * process: a CA, a server certificate for localhost and 127.0.0.1, a second server certificate
 * for SNI (other.test), an expired server certificate, a client certificate, and a second CA
 * nobody trusts with a server certificate of its own. Nothing from the machine's trust store is
 * used, and nothing is written outside the temporary directory (removed at exit).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  /** The trusted test CA (PEM). */
  ca: string;
  /** localhost + 127.0.0.1, signed by `ca`. */
  server: KeyPair;
  /** other.test, signed by `ca`. */
  other: KeyPair;
  /** localhost, signed by `ca`, already expired. */
  expired: KeyPair;
  /** A client certificate (CN=c1m test client), signed by `ca`. */
  client: KeyPair;
  /** A CA nobody trusts, and a localhost certificate it signed. */
  rogueCa: string;
  rogue: KeyPair;
  dir: string;
}

let made: TestCerts | undefined;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=c1m test ${name}`, '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function makeLeaf(dir: string, name: string, ca: string, cn: string, ext: string, days: number): KeyPair {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', String(days), '-extfile', `${name}.ext`]);
  return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
}

const SERVER_EXT = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';

/** The certificates (made at the first call). */
export function testCerts(): TestCerts {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), 'c1m-tls-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  makeCa(dir, 'ca');
  makeCa(dir, 'rogue-ca');
  made = {
    dir,
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    server: makeLeaf(dir, 'server', 'ca', 'localhost', SERVER_EXT, 2),
    other: makeLeaf(dir, 'other', 'ca', 'other.test', 'subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\n', 2),
    // -days 0: valid until the second it was signed (OpenSSL 3.0's x509 cannot back-date).
    expired: makeLeaf(dir, 'expired', 'ca', 'localhost', SERVER_EXT, 0),
    client: makeLeaf(dir, 'client', 'ca', 'c1m test client', 'extendedKeyUsage=clientAuth\n', 2),
    rogueCa: readFileSync(join(dir, 'rogue-ca.crt'), 'utf8'),
    rogue: makeLeaf(dir, 'rogue', 'rogue-ca', 'localhost', SERVER_EXT, 2),
  };
  return made;
}

/** Resolves once the expired certificate's notAfter is in the past (it is made valid for 0 days). */
export async function expiredCertReady(): Promise<void> {
  const end = new Date(new X509Certificate(testCerts().expired.cert).validTo).getTime();
  while (Date.now() <= end + 1000) await new Promise((r) => setTimeout(r, 100));
}
