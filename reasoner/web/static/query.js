// The query page: YASGUI on this server's /sparql. The query to show comes from the element's
// data- attributes (HTML-escaped by the template), never from inline script, so the page runs
// under a Content-Security-Policy without 'unsafe-inline'.
(function () {
  const el = document.getElementById("yasgui");
  const yasgui = new Yasgui(el, {
    requestConfig: { endpoint: new URL("/sparql", window.location.href).href, method: "POST" },
    copyEndpointOnNewTab: false,
    persistenceId: null,
    yasqe: { autocompleters: ["variables"] },
  });
  const tab = yasgui.getTab();
  tab.setQuery(el.dataset.query);
  if (el.dataset.run === "true") {
    tab.getYasr().on("drawn", () => document.body.setAttribute("data-results", "drawn"));
    tab.getYasqe().query();
  }
})();
