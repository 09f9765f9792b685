/**
 * A throwaway certificate authority and certificates it signs, made with openssl, for TLS between sipway and real
 * phones: the phones trust the CA file, sipway presents a certificate naming its addresses (subjectAltName IP and DNS
 * entries, as clients that verify the peer look there, not at the CN).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { requireTool } from './process.js';

export interface TestCa {
  /** PEM file of the CA certificate, for a client's trust store (baresip sip_cafile, NODE_EXTRA_CA_CERTS...). */
  caFile: string;
  /** Signs a certificate for `names` (IPv4/IPv6 literals become IP entries, the rest DNS entries). */
  issue(name: string, names: string[]): IssuedCert;
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  /** Certificate and key in one PEM file (baresip's sip_certificate wants both in one). */
  bundleFile: string;
}

export function createTestCa(dir: string): TestCa {
  const openssl = requireTool('openssl', 'openssl');
  mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.pem');
  const run = (args: string[]): void => {
    execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sipway test CA', '-keyout', caKey, '-out', caFile, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return {
    caFile,
    issue(name, names) {
      const keyFile = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const certFile = path.join(dir, `${name}.pem`);
      const ext = path.join(dir, `${name}.ext`);
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`);
      run(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${names[0] ?? name}`, '-keyout', keyFile, '-out', csr]);
      run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', certFile]);
      const bundleFile = path.join(dir, `${name}-bundle.pem`);
      writeFileSync(bundleFile, Buffer.concat([readFileSync(certFile), readFileSync(keyFile)]));
      return { certFile, keyFile, bundleFile };
    },
  };
}
