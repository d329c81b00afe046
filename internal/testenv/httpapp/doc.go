// Command httpapp is the service that deploy tests deploy: a tiny HTTP
// server whose behaviour comes from a file in its working directory, so that
// each commit of a test repository can ship a healthy, crashing, unhealthy
// or slow release. testenv.BuildHTTPApp builds it; it binds loopback only.
//
// Usage: httpapp [-addr 127.0.0.1:PORT | -systemd-socket] [-drain DURATION] [-dir DIR]
//
// -addr defaults to 127.0.0.1:$PORT. -systemd-socket takes the listening
// socket from systemd (socket activation; it exits 1 without one), and
// -drain is how long requests in flight may finish after SIGTERM (default
// 5s); GET /slow?d=DURATION answers after DURATION (see socket.go). DIR (default: the working directory)
// holds VERSION, served on / and /health, and behaviour, one directive a
// line (missing file: healthy):
//
//	healthy           serve / and /health with 200
//	unhealthy         serve /health with 500
//	hang              accept /health requests and never answer them
//	crash             exit 1 before listening
//	slow:DURATION     sleep DURATION before listening
//	crash-after:DUR   listen, then exit 1 after DUR
package main
