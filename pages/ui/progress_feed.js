/* The progress line's poller (see progress_feed.py): redraw the bar from the feed, ask for a
   rerun once per new stamp. */
export default function ({ parentElement, data, setTriggerValue }) {
  // Called again with each rerun's data, on the same element: one poller per element.
  clearInterval(parentElement.poller);
  const text = parentElement.querySelector(".text");
  const bar = parentElement.querySelector(".bar");
  const show = (line) => {
    text.textContent = line.text;
    bar.style.width = `${(100 * line.fraction).toFixed(2)}%`;
  };
  show(data.line);
  if (!data.every_ms) return;
  const poll = async () => {
    try {
      const reply = await fetch(data.url, { cache: "no-store" });
      if (!reply.ok || parentElement.poller !== timer) return;
      const line = await reply.json();
      if (parentElement.poller !== timer) return;
      show(line);
      if (line.stamp !== data.line.stamp && line.stamp !== parentElement.asked) {
        parentElement.asked = line.stamp;  // once: the rerun calls this function again
        setTriggerValue("stale", line.stamp);
      }
    } catch (error) {}  // a server restarting: the next poll tries again
  };
  const timer = setInterval(poll, data.every_ms);
  parentElement.poller = timer;
  return () => clearInterval(timer);
}
