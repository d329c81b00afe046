// Command httpapp is the service that deploy tests deploy: a tiny HTTP
// server whose behaviour comes from a file in its working directory, so that
// each commit of a test repository can ship a healthy, crashing, unhealthy
// or slow release. testenv.BuildHTTPApp builds it; it binds loopback only.
//
// Usage: httpapp [-addr 127.0.0.1:PORT | -addr unix:PATH | -systemd-socket] [-drain DURATION] [-dir DIR]
//
//	httpapp -probe unix:PATH
//
// -addr defaults to 127.0.0.1:$PORT; unix:PATH listens on a unix socket
// any user may connect to (a stale socket there is removed first). -probe
// serves nothing: it GETs /health from the httpapp on that socket and
// exits 0 on a 200, the health check of a colour on a unix socket. -systemd-socket takes the listening
// socket from systemd instead (socket activation; it exits 1 without one).
// On SIGTERM it stops accepting (with -addr the port is then closed, with
// a socket from systemd new connections wait for the next process) and
// lets open connections finish for up to -drain (default 5s). GET
// /slow?d=DURATION answers after DURATION (socket.go says more). DIR
// (default: the working directory) holds VERSION, served on /, /slow and
// /health, and behaviour, one directive a line (missing file: healthy):
//
//	healthy           serve / and /health with 200
//	unhealthy         serve /health with 500
//	hang              accept /health requests and never answer them
//	crash             exit 1 before listening
//	slow:DURATION     sleep DURATION before listening
//	crash-after:DUR   listen, then exit 1 after DUR
package main
