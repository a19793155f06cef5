// The one script of the web shop: an order page whose saga still runs follows it live, over the order's
// server-sent events (its status as it changes, the reason when it is rejected), and reloads once the order
// is settled so that the payment and the timeline are shown as the services have them. Without scripts the page
// refreshes itself instead (a <noscript> refresh), and everything else is plain forms.
"use strict";

const settled = new Set(["confirmed", "rejected", "cancelled", "shipped"]);

function follow(order) {
  const status = document.getElementById("status");
  const reason = document.getElementById("reason");
  const timeline = document.getElementById("timeline");
  const source = new EventSource(order.dataset.follow);
  let done = false;

  source.addEventListener("status", (event) => {
    const update = JSON.parse(event.data);
    status.textContent = update.status;
    status.dataset.status = update.status;
    if (update.reason) {
      reason.textContent = update.reason;
      reason.hidden = false;
    }
    const last = timeline.lastElementChild;
    if (!last || last.dataset.status !== update.status) {
      const item = document.createElement("li");
      item.dataset.status = update.status;
      const label = document.createElement("span");
      label.className = "status";
      label.dataset.status = update.status;
      label.textContent = update.status;
      const time = document.createElement("time");
      time.textContent = new Date().toLocaleTimeString();
      item.append(label, " ", time);
      if (update.reason) item.append(": " + update.reason);
      timeline.append(item);
    }
    if (settled.has(update.status)) {
      done = true;
      source.close();
      const note = document.getElementById("following");
      if (note) note.textContent = "The saga has given its answer.";
      setTimeout(() => window.location.reload(), 1500);
    }
  });
  // The stream ends after a minute, or the BFF went away: start again from the page.
  source.addEventListener("error", () => {
    if (done) return;
    source.close();
    setTimeout(() => window.location.reload(), 2000);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const order = document.querySelector("[data-follow]");
  if (order && "EventSource" in window) follow(order);
});
