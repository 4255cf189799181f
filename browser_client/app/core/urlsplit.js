// How Python's urllib.parse.urlsplit (3.11) reads a URL: the part of it parse_link relies on.
//
// The pairing link must mean the same thing on both sides, so the browser cannot use its own
// URL parser (WHATWG URL differs from RFC 3986 and from Python in many corners: default ports,
// percent-decoding, IDNA, backslashes). This is a faithful port for the only input link.js
// passes in, printable ASCII without spaces, including Python's quirks: the userinfo and the
// host are cut at the last "@" and the first "[", and a bracketed host must be an IPv6 address
// (or an IPvFuture literal) as Python's ipaddress module reads it.

/**
 * @typedef {object} SplitUrl
 * @property {string} scheme lower-cased, or "" when there is none
 * @property {string} netloc
 * @property {string} path
 * @property {string} query
 * @property {string} fragment
 * @property {boolean} hasUserinfo an "@" in netloc (Python: username is not None)
 * @property {string | null} hostname lower-cased; null when empty
 * @property {number | null} port null when absent
 */

const SCHEME_CHARS = /^[A-Za-z0-9+.-]+$/;
const IPV_FUTURE = /^v[a-fA-F0-9]+\..+$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;
const OCTET = /^(?:0|[1-9][0-9]{0,2})$/; // no leading zeros, as glibc inet_pton (bpo-36384)
const HEXTET_COUNT = 8;

/** Python's str.partition. @param {string} text @param {string} sep @returns {[string, string, string]} */
function partition(text, sep) {
  const at = text.indexOf(sep);
  return at < 0 ? [text, '', ''] : [text.slice(0, at), sep, text.slice(at + sep.length)];
}

/** Python's str.rpartition. @param {string} text @param {string} sep @returns {[string, string, string]} */
function rpartition(text, sep) {
  const at = text.lastIndexOf(sep);
  return at < 0 ? ['', '', text] : [text.slice(0, at), sep, text.slice(at + sep.length)];
}

/** ipaddress.IPv4Address accepts it. @param {string} text */
function isIPv4(text) {
  const octets = text.split('.');
  return octets.length === 4 && octets.every((o) => OCTET.test(o) && Number(o) <= 255);
}

/** ipaddress.IPv6Address accepts it (RFC 4291 §2.2 text forms, RFC 4007 scope id). @param {string} text */
function isIPv6(text) {
  const [address, percent, scope] = partition(text, '%');
  if (percent && (!scope || scope.includes('%'))) return false;
  const parts = address.split(':');
  if (parts.length < 3) return false;
  if (parts.at(-1).includes('.')) {
    if (!isIPv4(/** @type {string} */ (parts.pop()))) return false;
    parts.push('0', '0'); // the IPv4 suffix stands for two hextets
  }
  if (parts.length > HEXTET_COUNT + 1) return false;
  let skip = -1; // the one "::" allowed, between the endpoints
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] !== '') continue;
    if (skip >= 0) return false;
    skip = i;
  }
  let hi = parts.length;
  let lo = 0;
  if (skip >= 0) {
    hi = skip;
    lo = parts.length - skip - 1;
    if (!parts[0] && --hi) return false; // a leading ":" only as part of "::"
    if (!parts.at(-1) && --lo) return false; // a trailing ":" only as part of "::"
    if (HEXTET_COUNT - (hi + lo) < 1) return false;
  } else if (parts.length !== HEXTET_COUNT) {
    return false;
  }
  return [...parts.slice(0, hi), ...parts.slice(parts.length - lo)].every((p) => HEXTET.test(p));
}

/**
 * urllib.parse._check_bracketed_host, as a test. Python also refuses an IPv4 address in
 * brackets; having no colon, it is no IPv6 address either.
 * @param {string} host
 */
function bracketedHostIsValid(host) {
  return host.startsWith('v') ? IPV_FUTURE.test(host) : isIPv6(host);
}

/**
 * urlsplit(url) together with its username, hostname and port attributes.
 * @param {string} url printable ASCII without spaces (the caller checks)
 * @returns {SplitUrl | null} null where Python raises ValueError (urlsplit itself, or `.port`)
 */
export function urlsplit(url) {
  let rest = url;
  let scheme = '';
  let netloc = '';
  let query = '';
  let fragment = '';
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[A-Za-z]/.test(rest) && SCHEME_CHARS.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  if (rest.startsWith('//')) {
    const ends = ['/', '?', '#'].map((c) => rest.indexOf(c, 2)).filter((at) => at >= 0);
    const end = Math.min(rest.length, ...ends);
    netloc = rest.slice(2, end);
    rest = rest.slice(end);
    const open = netloc.includes('[');
    if (open !== netloc.includes(']')) return null; // "Invalid IPv6 URL"
    if (open && !bracketedHostIsValid(partition(partition(netloc, '[')[2], ']')[0])) return null;
  }
  [rest, , fragment] = partition(rest, '#');
  [rest, , query] = partition(rest, '?');

  // The netloc attributes (_NetlocResultMixinStr).
  const hostinfo = rpartition(netloc, '@')[2];
  const [, openBracket, bracketed] = partition(hostinfo, '[');
  let host;
  let portText;
  if (openBracket) {
    let afterHost;
    [host, , afterHost] = partition(bracketed, ']');
    portText = partition(afterHost, ':')[2];
  } else {
    [host, , portText] = partition(hostinfo, ':');
  }
  let port = null;
  if (portText) {
    if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) return null;
    port = Number(portText);
  }
  // Python lower-cases the host but not an IPv6 zone after "%".
  const [name, percent, zone] = partition(host, '%');
  return {
    scheme,
    netloc,
    path: rest,
    query,
    fragment,
    hasUserinfo: netloc.includes('@'),
    hostname: host ? name.toLowerCase() + percent + zone : null,
    port,
  };
}
