/* Caskalytics web beacon, served by the Caskalytics API at /js/caskalytics.js. Embed it in every page:
 *
 *   <script defer data-site="example.com" src="https://ANALYTICS-HOST/js/caskalytics.js"></script>
 *
 * It posts one hit to ANALYTICS-HOST/api/event for each page view: at page load, and again on single-page-app
 * navigation (history.pushState and the back/forward buttons; a change of the #fragment alone is no new
 * page). A hit carries the page URL (its utm_* parameters are read by the server), the referrer (the
 * previous page for in-app navigation) and a random visitor id kept in localStorage or a first-party cookie
 * for __VISITOR_DAYS__ days after the last visit. `caskalytics("signup")` sends a custom event. Nothing else is
 * collected; the server never stores the IP address.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.JSON) return;
  var endpoint = new URL("/api/event", script.src).href;   // the API that served this script
  var site = script.getAttribute("data-site") || location.hostname;
  var LIFETIME_DAYS = __VISITOR_DAYS__;
  var STORAGE = "__VISITOR_STORAGE__";                     // "localStorage" or "cookie"
  var KEY = "caskalytics_vid";

  function newId() {
    var bytes = new Uint8Array(16), hex = "";
    window.crypto.getRandomValues(bytes);
    for (var i = 0; i < bytes.length; i++) hex += ("0" + bytes[i].toString(16)).slice(-2);
    return hex;
  }

  function visitorId() {
    try {
      var id = null, now = Date.now();
      if (STORAGE === "cookie") {
        var match = document.cookie.match(/(?:^|;\s*)caskalytics_vid=([A-Za-z0-9_-]{8,64})/);
        id = (match && match[1]) || newId();
        document.cookie = KEY + "=" + id + "; Max-Age=" + LIFETIME_DAYS * 86400 + "; Path=/; SameSite=Lax" +
          (location.protocol === "https:" ? "; Secure" : "");
      } else {
        var saved = JSON.parse(window.localStorage.getItem(KEY) || "null");
        id = saved && saved.expires > now && /^[A-Za-z0-9_-]{8,64}$/.test(saved.id) ? saved.id : newId();
        window.localStorage.setItem(KEY, JSON.stringify({ id: id, expires: now + LIFETIME_DAYS * 864e5 }));
      }
      return id;
    } catch (e) {
      return null;     // storage blocked: the server falls back to its daily hash
    }
  }

  function send(name, referrer) {
    var body = JSON.stringify({ site: site, name: name, url: location.href, referrer: referrer || null,
                                visitor: visitorId() });
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: "text/plain" }))) return;
    } catch (e) { /* fall through to fetch */ }
    if (window.fetch) {
      fetch(endpoint, { method: "POST", body: body, keepalive: true, mode: "no-cors",
                        headers: { "Content-Type": "text/plain" } }).catch(function () {});
    }
  }

  var page = location.pathname + location.search;
  var pageUrl = location.href;

  function navigated() {             // after pushState or popstate: a new page view if the page changed
    var now = location.pathname + location.search;
    if (now === page) return;
    var previous = pageUrl;
    page = now;
    pageUrl = location.href;
    send("pageview", previous);
  }

  var pushState = history.pushState;
  if (pushState) {
    history.pushState = function () {
      var result = pushState.apply(this, arguments);
      navigated();
      return result;
    };
    window.addEventListener("popstate", navigated);
  }

  window.caskalytics = function (name) { send(name || "pageview", document.referrer); };
  send("pageview", document.referrer);
})();
