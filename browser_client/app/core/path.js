// Which network path a connection really uses: LAN, direct through NAT, or relay. The port of
// peer_agent/path.py's classification, fed from the W3C getStats() report instead of aioice:
// the transport's selected candidate pair (RFC 8445 §8.1.1) and its two candidates.
//
// Pure: it reads a report (any iterable of stats objects), so node tests can give it one.

/** @typedef {'lan' | 'direct' | 'relay'} PathKind */
/**
 * @typedef {object} PathInfo
 * @property {PathKind} kind
 * @property {string} transport "udp" or "tcp"; for a relayed path how we reach the relay:
 *   "udp", "tcp" or "tls" (RTCIceCandidateStats.relayProtocol)
 * @property {string} localType host / srflx / prflx / relay
 * @property {string} remoteType
 * @property {number | null} rttMs the pair's current round-trip time (STUN consent checks)
 */

// Python's ipaddress is_private (3.11), so both sides call the same path "LAN": RFC 1918,
// loopback, link-local, and the special-purpose ranges (documentation, benchmarking...) that
// never route on the Internet.
const PRIVATE_V4 = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 29], ['192.0.0.170', 31], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['240.0.0.0', 4], ['255.255.255.255', 32],
];
const PRIVATE_V6 = [
  ['::1', 128], ['::', 128], ['::ffff:0:0', 96], ['100::', 64], ['2001::', 23], ['2001:2::', 48],
  ['2001:db8::', 32], ['2001:10::', 28], ['fc00::', 7], ['fe80::', 10],
];

/** @param {string} text @returns {bigint | null} */
function ipv4(text) {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) < 256)) return null;
  return parts.reduce((n, p) => (n << 8n) | BigInt(p), 0n);
}

/** @param {string} text @returns {bigint | null} */
function ipv6(text) {
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')));
  // An embedded IPv4 tail (::ffff:192.0.2.1) counts as two groups.
  const last = groups[groups.length - 1];
  if (last.length && last[last.length - 1].includes('.')) {
    const v4 = ipv4(last.pop() ?? '');
    if (v4 === null) return null;
    last.push((v4 >> 16n).toString(16), (v4 & 0xffffn).toString(16));
  }
  const count = groups.reduce((n, g) => n + g.length, 0);
  if (halves.length === 1 ? count !== 8 : count > 7) return null;
  const all = halves.length === 1 ? groups[0] : [...groups[0], ...Array(8 - count).fill('0'), ...groups[1]];
  if (!all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** @param {bigint} value @param {number} bits @param {Array<[string, number]>} nets @param {(s: string) => bigint | null} parse */
function within(value, bits, nets, parse) {
  return nets.some(([base, prefix]) => {
    const shift = BigInt(bits - prefix);
    return value >> shift === /** @type {bigint} */ (parse(base)) >> shift;
  });
}

/**
 * A local address: private / link-local by Python's rules, or a ".local" mDNS name (a host
 * candidate a browser hides; it is on the same link).
 * @param {string} host
 */
export function isLocalAddress(host) {
  const bare = host.replace(/^\[|\]$/g, '').split('%')[0];
  const v4 = ipv4(bare);
  if (v4 !== null) return within(v4, 32, PRIVATE_V4, ipv4);
  const v6 = ipv6(bare);
  if (v6 !== null) return within(v6, 128, PRIVATE_V6, ipv6);
  return bare.toLowerCase().endsWith('.local');
}

/**
 * Relay if either side relays; LAN if host-to-host on local addresses (a remote peer-reflexive
 * candidate on a local address too: a host candidate hidden behind an mDNS name turns into one
 * when learned from a check); else direct.
 * @param {string} localType
 * @param {string} remoteType
 * @param {string} remoteHost
 * @returns {PathKind}
 */
export function classify(localType, remoteType, remoteHost) {
  if (localType === 'relay' || remoteType === 'relay') return 'relay';
  if (localType === 'host' && (remoteType === 'host' || remoteType === 'prflx') && isLocalAddress(remoteHost)) {
    return 'lan';
  }
  return 'direct';
}

/**
 * The path of a connected RTCPeerConnection from its getStats() report, or null before ICE
 * has selected a pair.
 * @param {Iterable<any>} report the values of an RTCStatsReport
 * @returns {PathInfo | null}
 */
export function describePath(report) {
  const byId = new Map();
  for (const stats of report) byId.set(stats.id, stats);
  let pair = null;
  for (const stats of byId.values()) {
    if (stats.type === 'transport' && stats.selectedCandidatePairId) pair = byId.get(stats.selectedCandidatePairId);
  }
  // Engines without transport stats mark the pair itself.
  pair ??= [...byId.values()].find((s) => s.type === 'candidate-pair' && s.selected && s.state === 'succeeded');
  if (!pair) return null;
  const local = byId.get(pair.localCandidateId);
  const remote = byId.get(pair.remoteCandidateId);
  if (!local || !remote) return null;
  const localType = String(local.candidateType);
  const remoteType = String(remote.candidateType);
  const remoteHost = String(remote.address ?? remote.ip ?? '');
  let transport = String(local.protocol ?? 'udp').toLowerCase();
  if (localType === 'relay' && local.relayProtocol) transport = String(local.relayProtocol).toLowerCase();
  const rtt = typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  return { kind: classify(localType, remoteType, remoteHost), transport, localType, remoteType, rttMs: rtt };
}

/**
 * What the ICE agent gathered locally, for the failure sentence: did we get a relay
 * candidate at all (the relay answered and granted an allocation)?
 * @param {Iterable<any>} report
 */
export function gatheredTypes(report) {
  const types = new Set();
  for (const stats of report) if (stats.type === 'local-candidate') types.add(String(stats.candidateType));
  return types;
}
