// Package natstest starts throw-away embedded NATS servers for tests, as
// net/http/httptest does for HTTP: plain (no TLS, no authentication) on a
// free loopback port, shut down when the test ends. Tests of the broker's own
// security use internal/broker instead. It also reserves the ports and route
// URLs a test cluster of brokers is configured with before any of them starts.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Start runs a server and returns its client URL.
func Start(t testing.TB) string {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns.ClientURL()
}

// Connect dials url and closes the connection when the test ends.
func Connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago, for
// an address that must be known before its server starts (a cluster's
// route URLs, a broker restarted on the same port).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MeshRoutes reserves a free route port on 127.0.0.1 for each name and
// returns it, and for each name the nats-route URLs of all the others in
// the order given: the configuration of a full-mesh cluster.
func MeshRoutes(t testing.TB, names ...string) (ports map[string]int, routes map[string][]string) {
	t.Helper()
	ports = map[string]int{}
	for _, n := range names {
		ports[n] = FreePort(t)
	}
	routes = map[string][]string{}
	for _, n := range names {
		for _, o := range names {
			if o != n {
				routes[n] = append(routes[n], fmt.Sprintf("nats-route://127.0.0.1:%d", ports[o]))
			}
		}
	}
	return ports, routes
}
