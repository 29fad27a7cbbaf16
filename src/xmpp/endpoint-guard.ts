import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Where `register-push-webpush` may send (issue 9 item 4: no SSRF). A Web Push endpoint must be `https:` on a
 * public address; the check runs on the resolved addresses at registration and again at send time through the
 * request's own `lookup`, so the address checked is the address connected to (a DNS answer that changes
 * between the two, "DNS rebinding", is refused). Operators with push services inside their network list their
 * hosts or CIDRs in PUSHGATE_XMPP_WEBPUSH_ALLOW; those may also use `http:`. Pushgate's own endpoints (same
 * origin as PUBLIC_URL) never leave the process and are not checked here.
 */

/** Special-purpose ranges (RFC 6890 and the IANA registries): never a public push service. */
const NOT_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NOT_PUBLIC.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  NOT_PUBLIC.addSubnet(net, bits, 'ipv6');

export type EndpointVerdict = { ok: true; url: URL; own: boolean } | { ok: false };

export class EndpointGuard {
  private readonly allowHosts = new Set<string>();
  private readonly allowNets = new BlockList();

  constructor(
    private readonly publicOrigin: string,
    /** PUSHGATE_XMPP_WEBPUSH_ALLOW: host names, addresses and CIDRs. */
    allow: string,
    private readonly resolve: typeof dnsLookup = dnsLookup,
  ) {
    for (const entry of allow
      .split(',')
      .map((e) => e.trim().toLowerCase())
      .filter(Boolean)) {
      const [addr, bits] = entry.split('/');
      const family = isIP(addr!);
      if (family && bits !== undefined) this.allowNets.addSubnet(addr!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
      else if (family) this.allowNets.addAddress(addr!, family === 4 ? 'ipv4' : 'ipv6');
      else this.allowHosts.add(entry);
    }
  }

  /** May the gateway connect to this address (for this host)? */
  addressAllowed(address: string, host: string): boolean {
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the IPv4 address: judge that one.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return this.addressAllowed(mapped[1]!, host);
    const family = isIP(address);
    if (!family) return false;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowHosts.has(host) || this.allowNets.check(address, type)) return true;
    return !NOT_PUBLIC.check(address, type);
  }

  private hostAllowed(host: string): boolean {
    return this.allowHosts.has(host) || (isIP(host) !== 0 && this.allowNets.check(host, isIP(host) === 4 ? 'ipv4' : 'ipv6'));
  }

  /**
   * Registration-time check. Every failure gives the same answer (no verdict says whether a target exists,
   * answered, or resolved), so the command cannot be used to map an internal network.
   */
  async check(endpoint: string): Promise<EndpointVerdict> {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return { ok: false };
    }
    if (url.origin === this.publicOrigin) return { ok: true, url, own: true };
    if (url.username || url.password) return { ok: false };
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.hostAllowed(host))) return { ok: false };
    const addresses = await this.addressesOf(host).catch(() => [] as LookupAddress[]);
    if (addresses.length === 0 || !addresses.every((a) => this.addressAllowed(a.address, host))) return { ok: false };
    return { ok: true, url, own: false };
  }

  private addressesOf(host: string): Promise<LookupAddress[]> {
    if (isIP(host)) return Promise.resolve([{ address: host, family: isIP(host) }]);
    return new Promise((resolve, reject) => this.resolve(host, { all: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))));
  }

  /**
   * Send-time check of what `lookup` cannot see: the scheme, and an IP literal host (Node connects to those
   * without calling `lookup`).
   */
  urlAllowed(url: URL): boolean {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.hostAllowed(host))) return false;
    return !isIP(host) || this.addressAllowed(host, host);
  }

  /** A `lookup` for http(s).request: resolves, then refuses any address that is not allowed (send-time check). */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    const host = hostname.toLowerCase();
    this.addressesOf(host).then(
      (addrs) => {
        const bad = addrs.find((a) => !this.addressAllowed(a.address, host));
        if (bad || addrs.length === 0) {
          const err = Object.assign(new Error(`refused address for ${hostname}`), { code: 'EPUSHGATEREFUSED' });
          return callback(err, '', 0);
        }
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addrs);
        return callback(null, addrs[0]!.address, addrs[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}
