package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/devcluster"
)

// startCollective runs a throw-away collective of three nodes (web1.dev,
// db1.dev, cache1.dev) for the examples and returns its client.conf.
func startCollective() (conf string, stop func()) {
	dir, err := os.MkdirTemp("", "mco-client-example-")
	if err != nil {
		log.Fatal(err)
	}
	c, err := devcluster.Start(context.Background(), devcluster.Options{Dir: dir, Nodes: 3})
	if err != nil {
		log.Fatal(err)
	}
	return c.ClientConfig, func() { c.Close(); os.RemoveAll(dir) }
}

// A program reads a client configuration, connects and calls an action on
// named nodes; results stream to the callback as they are verified.
func Example() {
	conf, stop := startCollective()
	defer stop()

	cfg, err := client.ConfigFromFile(conf)
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.Connect(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	stats, err := c.Call(context.Background(), client.Request{
		Agent: "rpcutil", Action: "ping", Targets: []string{"web1.dev", "db1.dev"}, Timeout: 10 * time.Second,
	}, func(r client.Result) {})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", stats.OK, "no response:", len(stats.NoResponse))
	// Output: ok: 2 no response: 0
}

// A program that owns its NATS connection (its own TLS settings, reconnect
// policy, or one connection shared with other work) hands it to New.
func ExampleNew() {
	conf, stop := startCollective()
	defer stop()

	cfg, err := client.ConfigFromFile(conf)
	if err != nil {
		log.Fatal(err)
	}
	identity, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		log.Fatal(err)
	}
	caPEM, err := os.ReadFile(cfg.CA)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	nc, err := nats.Connect(strings.Join(cfg.Brokers, ","), nats.Secure(&tls.Config{
		Certificates: []tls.Certificate{identity}, RootCAs: roots, MinVersion: tls.VersionTLS13,
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close() // the program's connection: Close below leaves it open

	c, err := client.New(nc, cfg, identity)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	stats, err := c.Call(context.Background(), client.Request{
		Agent: "rpcutil", Action: "ping", Targets: []string{"cache1.dev"}, Timeout: 10 * time.Second,
	}, func(r client.Result) { fmt.Println(r.Sender, r.Status) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ok:", stats.OK, "from", c.Identity())
	// Output:
	// cache1.dev OK
	// ok: 1 from dev.mcollective
}
