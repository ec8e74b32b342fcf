// Command mco is Marionette's single binary: broker, node daemon and client.
package main

import (
	"os"

	"github.com/marionette/mco/internal/cli"
)

func main() {
	os.Exit(cli.Run(cli.OSApp(), os.Args[1:]))
}
