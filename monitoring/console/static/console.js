// Auto-refresh of the page's main content (no full reload: focus and scroll stay where they are).
// Pauses while the tab is hidden or keyboard focus is inside the content, and on request.
"use strict";
(function () {
  const main = document.getElementById("main");
  const toggle = document.getElementById("refresh-toggle");
  const status = document.getElementById("refresh-status");
  if (!main || !main.dataset.refresh) return;
  const seconds = Math.max(5, Number(main.dataset.refresh) || 15);
  let enabled = true;
  toggle.addEventListener("click", function () {
    enabled = !enabled;
    toggle.setAttribute("aria-pressed", String(enabled));
    toggle.textContent = enabled ? "Auto-refresh on" : "Auto-refresh off";
  });
  async function refresh() {
    if (!enabled || document.hidden || main.contains(document.activeElement) && document.activeElement !== main) return;
    try {
      const response = await fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (response.redirected || !response.ok) { status.textContent = "Refresh failed (" + response.status + ")"; return; }
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("main");
      if (fresh) { main.replaceChildren(...fresh.childNodes); status.textContent = "Updated " + new Date().toLocaleTimeString(); }
    } catch (error) {
      status.textContent = "Refresh failed";
    }
  }
  setInterval(refresh, seconds * 1000);
})();
