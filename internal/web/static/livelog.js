// Follows a running deployment's live log (Server-Sent Events): each line
// is appended as text, each step and the end are said below the log.
// EventSource resumes after a dropped connection from the last event id.
(function () {
  var log = document.getElementById("live-log");
  if (!log || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var first = true;
  var es = new EventSource(log.dataset.src);
  es.addEventListener("line", function (e) {
    if (first) { log.textContent = ""; first = false; }
    log.textContent += e.data + "\n";
  });
  es.addEventListener("step", function (e) {
    var s = JSON.parse(e.data);
    status.textContent = "step " + s.seq + " " + s.name + ": " + s.status;
  });
  es.addEventListener("end", function (e) {
    var end = JSON.parse(e.data);
    status.textContent = "deployment " + end.deployment_id + ": " + end.status + " (reload for the steps)";
    es.close();
  });
})();
