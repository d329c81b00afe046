// Command fraisier deploys fraises: services pushed to a forge and run by systemd.
package main

import (
	"os"

	"github.com/fraiseql/fraisier/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.StdStreams()))
}
