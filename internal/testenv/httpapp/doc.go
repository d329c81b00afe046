// Command httpapp is the service that deploy tests deploy: a tiny HTTP
// server whose behaviour comes from a file in its working directory, so that
// each commit of a test repository can ship a healthy, crashing, unhealthy
// or slow release. testenv.BuildHTTPApp builds it; it binds loopback only.
//
// Usage: httpapp [-addr 127.0.0.1:PORT] [-dir DIR]
//
// -addr defaults to 127.0.0.1:$PORT. DIR (default: the working directory)
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
