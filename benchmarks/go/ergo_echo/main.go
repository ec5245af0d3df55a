// ergo_echo is Ergo's WebSocket echo for benchmarks/ws_echo.py, written as Ergo's
// examples write it (ergo-services/examples, websocket/apps/myapp): a web server
// meta-process serving a websocket handler meta-process whose connections are given
// round-robin to a pool of 4 worker processes; a worker echoes each websocket.Message
// back to its connection with SendAlias. One core (GOMAXPROCS=1). permessage-deflate
// is accepted when a client offers it. Prints the port on stdout.
//
// It needs ergo.services/ergo and ergo.services/meta/websocket from the Go module
// proxy (see go.mod); benchmarks/go/build.py says so when the proxy refuses them.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"

	"ergo.services/ergo"
	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"ergo.services/ergo/meta"
	"ergo.services/meta/websocket"
)

// worker echoes every message of the connections given to it.
type worker struct {
	act.Actor
}

func factoryWorker() gen.ProcessBehavior {
	return &worker{}
}

func (w *worker) HandleMessage(from gen.PID, message any) error {
	switch m := message.(type) {
	case websocket.Message:
		if err := w.SendAlias(m.ID, m); err != nil {
			w.Log().Error("unable to echo to %s: %s", m.ID, err)
		}
	case websocket.MessageConnect, websocket.MessageDisconnect:
		// nothing to keep per connection
	}
	return nil
}

// web spawns the websocket handler and the web server meta-processes.
type web struct {
	act.Actor
}

func factoryWeb() gen.ProcessBehavior {
	return &web{}
}

func (w *web) Init(args ...any) error {
	port := args[0].(uint16)
	pool := args[1].([]gen.Atom)

	handler := websocket.CreateHandler(websocket.HandlerOptions{
		ProcessPool:       pool,
		EnableCompression: true,
	})
	if _, err := w.SpawnMeta(handler, gen.MetaOptions{}); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/ws", handler)

	server, err := meta.CreateWebServer(meta.WebServerOptions{
		Host:    "127.0.0.1",
		Port:    port,
		Handler: mux,
	})
	if err != nil {
		return err
	}
	if _, err := w.SpawnMeta(server, gen.MetaOptions{}); err != nil {
		server.Terminate(err) // closes the listening socket
		return err
	}
	return nil
}

// freePort asks the kernel for a free port: meta.CreateWebServer does not report
// the port it bound, so port 0 cannot be used.
func freePort() (uint16, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port), nil
}

func main() {
	port := flag.Int("port", 0, "TCP port (0: a free port)")
	workers := flag.Int("workers", 4, "echo workers in the pool")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	p := uint16(*port)
	if p == 0 {
		var err error
		if p, err = freePort(); err != nil {
			fmt.Fprintln(os.Stderr, "ergo_echo:", err)
			os.Exit(1)
		}
	}

	var options gen.NodeOptions
	options.Network.Mode = gen.NetworkModeDisabled
	options.Log.DefaultLogger.Disable = true // no banner or log on stdout: the driver reads it
	node, err := ergo.StartNode("ergo_echo@localhost", options)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ergo_echo: unable to start node:", err)
		os.Exit(1)
	}
	pool := make([]gen.Atom, 0, *workers)
	for i := 1; i <= *workers; i++ {
		name := gen.Atom(fmt.Sprintf("echo%d", i))
		if _, err := node.SpawnRegister(name, factoryWorker, gen.ProcessOptions{}); err != nil {
			fmt.Fprintln(os.Stderr, "ergo_echo: unable to spawn worker:", err)
			os.Exit(1)
		}
		pool = append(pool, name)
	}
	if _, err := node.SpawnRegister("web", factoryWeb, gen.ProcessOptions{}, p, pool); err != nil {
		fmt.Fprintln(os.Stderr, "ergo_echo: unable to start the web server:", err)
		os.Exit(1)
	}
	fmt.Println(p)
	node.Wait()
}
