// gorilla_echo is the raw Go baseline of benchmarks/ws_echo.py: gorilla/websocket's
// echo, one goroutine per connection, ReadMessage then WriteMessage, on one core
// (GOMAXPROCS=1). permessage-deflate is accepted when a client offers it.
// It listens on 127.0.0.1 (port 0: any free port) and prints the port on stdout.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"

	"github.com/gorilla/websocket"
)

func main() {
	port := flag.Int("port", 0, "TCP port (0: any free port)")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	upgrader := websocket.Upgrader{EnableCompression: true}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gorilla_echo:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "gorilla_echo:", err)
		os.Exit(1)
	}
}
