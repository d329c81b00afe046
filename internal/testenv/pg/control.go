package pg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// An outage test stops a cluster's server and starts it again on the same
// data, as an operator's restart or a crash would, while the processes
// under test keep running and must reconnect.

// StopServer stops the server and keeps its data. Fast mode (the default,
// a clean shutdown that ends every session) when immediate is false;
// immediate mode (no checkpoint, crash recovery at the next start) when
// it is true. Connections get an error until StartServer.
func (c *Cluster) StopServer(ctx context.Context, immediate bool) error {
	mode := "fast"
	if immediate {
		mode = "immediate"
	}
	if err := c.run(ctx, filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("stop PostgreSQL: %w", err)
	}
	return nil
}

// StartServer starts the server StopServer stopped, on the same data and
// socket, and returns once it accepts connections.
func (c *Cluster) StartServer(ctx context.Context) error {
	logFile := filepath.Join(c.root, "server.log")
	if err := c.run(ctx, filepath.Join(c.bin, "pg_ctl"), "-D", c.data, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("start PostgreSQL again: %w\nserver log:\n%s", err, c.LogTail(4<<10))
	}
	return nil
}

// LogTail is up to the last n bytes of the server's log, for a failed
// test to show.
func (c *Cluster) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(c.root, "server.log"))
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
