// Firefox's reader-view extractor for the extension's content script (docs/SYNC.md "Reader
// view"), bundled by `npm run build` into extension/vendor/readability.js as a classic script
// (content scripts injected with chrome.scripting cannot be ES modules).
import { Readability } from '@mozilla/readability';

globalThis.PeerbeamReadability = Readability;
