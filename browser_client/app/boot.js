// Runs first, blocking, before the page renders (DESIGN "Pairing" step 2): the link's fragment
// carries the pairing token, the QR secret and the PC's key. Take it out of the address bar at
// once, so that it is not shown, bookmarked, synced or shared from there, and hand it to
// main.js through a property main.js deletes when it reads it.
(function () {
  'use strict';
  var fragment = location.hash;
  if (fragment) {
    history.replaceState(null, '', location.pathname + location.search);
  }
  Object.defineProperty(window, 'peerbeamFragment', { value: fragment, configurable: true, writable: false });
})();
