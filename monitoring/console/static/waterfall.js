// The trace waterfall: spans grouped by agent, bars placed on the trace's time axis, the critical path
// marked (class "critical" and in each row's accessible name). Rows are built once, in one fragment.
"use strict";
(function () {
  const box = document.getElementById("waterfall");
  if (!box) return;
  const format = function (ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(1) + " ms"; };
  fetch(box.dataset.src, {credentials: "same-origin"}).then(function (response) {
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }).then(function (data) {
    const total = data.duration_ms || 1;
    const fragment = document.createDocumentFragment();
    let group = -1;
    for (const row of data.rows) {
      const [start, duration, agent, operation, error, critical, spanId, depth] = row;
      if (agent !== group) {
        group = agent;
        const heading = document.createElement("div");
        heading.className = "wf-group";
        heading.setAttribute("role", "presentation");
        heading.textContent = data.agents[agent];
        fragment.appendChild(heading);
      }
      const line = document.createElement("div");
      line.className = "wf-row" + (critical ? " critical" : "") + (error ? " error" : "") + (duration === null ? " open" : "");
      line.setAttribute("role", "listitem");
      line.dataset.spanId = spanId;
      const shown = duration === null ? total - start : duration;
      line.setAttribute("aria-label", data.agents[agent] + ": " + operation + ", " +
        (duration === null ? "still open" : format(duration)) + " at " + format(start) +
        (critical ? ", on the critical path" : "") + (error ? ", error" : ""));
      const name = document.createElement("span");
      name.className = "wf-name";
      name.textContent = operation;
      name.style.paddingLeft = (0.5 + Math.min(depth, 20) * 0.6) + "rem";
      const track = document.createElement("span");
      track.className = "wf-track";
      const bar = document.createElement("span");
      bar.className = "wf-bar";
      bar.style.left = (start / total * 100) + "%";
      bar.style.width = (shown / total * 100) + "%";
      const time = document.createElement("span");
      time.className = "wf-time";
      time.textContent = duration === null ? "open" : format(duration);
      track.append(bar);
      line.append(name, time, track);
      fragment.appendChild(line);
    }
    box.replaceChildren(fragment);
    box.dataset.critical = String(data.critical_count);
    // Marked once the rows have been laid out and painted (the next frame): what a person waits for.
    requestAnimationFrame(function () {
      performance.mark("waterfall-rendered");
      box.dataset.rendered = String(data.rows.length);
    });
  }).catch(function (error) {
    box.replaceChildren();
    const message = document.createElement("p");
    message.className = "error";
    message.setAttribute("role", "alert");
    message.textContent = "The waterfall could not be loaded: " + error.message;
    box.appendChild(message);
  });
})();
