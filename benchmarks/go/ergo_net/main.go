// ergo_net is Ergo's side of benchmarks/net_messaging.py: one node per process over
// loopback, measured the way that script measures ergopy (GOMAXPROCS=1; the driver
// pins each process to its own core).
//
//	-role=serve  node gorecv@localhost with an acceptor on 127.0.0.1: "recv" counts
//	             messages and answers every -chunk-th with "ack" to its sender; "echo"
//	             answers a call with its request. Prints {"port": P}, then runs until
//	             stdin closes (or -timeout).
//	-role=send   node gosend@localhost dials -peer at 127.0.0.1:-port (a static route),
//	             sends -n ints to ProcessID{"recv", peer} in chunks, at most -window
//	             chunks unacknowledged, then makes -calls sequential calls to "echo".
//	             Prints {"one_way": msgs/s, "call_p50_us", "call_p99_us", "calls_per_s"}.
//
// It needs ergo.services/ergo from the Go module proxy (see go.mod); go_build.py says
// "not available" when the proxy refuses it.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"ergo.services/ergo"
	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
)

var (
	role    = flag.String("role", "send", "serve or send")
	peer    = flag.String("peer", "pyrecv@localhost", "node to send to (send)")
	port    = flag.Int("port", 0, "the peer's acceptor port (send)")
	n       = flag.Int("n", 200_000, "one-way messages")
	chunk   = flag.Int("chunk", 500, "messages per chunk, one ack each")
	window  = flag.Int("window", 8, "chunks in flight")
	calls   = flag.Int("calls", 5_000, "sequential calls")
	cookie  = flag.String("cookie", "bench-cookie", "the shared cookie")
	timeout = flag.Duration("timeout", 120*time.Second, "time allowed")
	procs   = flag.Int("procs", 1, "GOMAXPROCS")
)

// ---- receiving side ----

type receiver struct {
	act.Actor
	chunk int
	count int
}

func factoryReceiver() gen.ProcessBehavior { return &receiver{} }

func (r *receiver) Init(args ...any) error {
	r.chunk = args[0].(int)
	return nil
}

func (r *receiver) HandleMessage(from gen.PID, message any) error {
	r.count++
	if r.count == r.chunk {
		r.count = 0
		return r.Send(from, "ack")
	}
	return nil
}

type echo struct {
	act.Actor
}

func factoryEcho() gen.ProcessBehavior { return &echo{} }

func (e *echo) HandleCall(from gen.PID, ref gen.Ref, request any) (any, error) {
	return request, nil
}

// ---- sending side ----

type start struct {
	n    int
	done chan time.Time
}

type runCalls struct {
	calls int
	done  chan []time.Duration
}

type sender struct {
	act.Actor
	to   gen.ProcessID
	left int
	acks int
	done chan time.Time
}

func factorySender() gen.ProcessBehavior { return &sender{} }

func (s *sender) Init(args ...any) error {
	s.to = args[0].(gen.ProcessID)
	return nil
}

func (s *sender) sendChunk() error {
	k := *chunk
	if s.left < k {
		k = s.left
	}
	s.left -= k
	for i := 0; i < k; i++ {
		if err := s.Send(s.to, i); err != nil {
			return err
		}
	}
	return nil
}

func (s *sender) HandleMessage(from gen.PID, message any) error {
	switch m := message.(type) {
	case start:
		s.left, s.acks, s.done = m.n, m.n / *chunk, m.done
		for i := 0; i < *window && i < s.acks; i++ {
			if err := s.sendChunk(); err != nil {
				return err
			}
		}
		return nil
	case runCalls: // sequential calls from this process (Call blocks its goroutine)
		echo := gen.ProcessID{Name: "echo", Node: s.to.Node}
		lat := make([]time.Duration, 0, m.calls)
		for i := 0; i < m.calls; i++ {
			t0 := time.Now()
			if _, err := s.Call(echo, i); err != nil {
				return err
			}
			lat = append(lat, time.Since(t0))
		}
		m.done <- lat
		return nil
	}
	s.acks--
	if s.left > 0 {
		return s.sendChunk()
	}
	if s.acks == 0 {
		s.done <- time.Now()
	}
	return nil
}

// ---- the node ----

func startNode(name gen.Atom, acceptor bool) gen.Node {
	var options gen.NodeOptions
	options.Network.Cookie = *cookie
	if acceptor {
		options.Network.Acceptors = []gen.AcceptorOptions{{Host: "127.0.0.1", Port: 16000, PortRange: 2000}}
	} else {
		options.Network.Mode = gen.NetworkModeHidden // dials only
	}
	options.Log.DefaultLogger.Disable = true // no banner or log on stdout: the driver reads it
	node, err := ergo.StartNode(name, options)
	if err != nil {
		fail(err)
	}
	return node
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ergo_net:", err)
	os.Exit(1)
}

func serve() {
	node := startNode("gorecv@localhost", true)
	defer node.Stop()
	if _, err := node.SpawnRegister("recv", factoryReceiver, gen.ProcessOptions{}, *chunk); err != nil {
		fail(err)
	}
	if _, err := node.SpawnRegister("echo", factoryEcho, gen.ProcessOptions{}); err != nil {
		fail(err)
	}
	acceptors, err := node.Network().Acceptors()
	if err != nil || len(acceptors) == 0 {
		fail(fmt.Errorf("no acceptor: %v", err))
	}
	_, p, err := net.SplitHostPort(acceptors[0].Info().Interface)
	if err != nil {
		fail(err)
	}
	listening, _ := strconv.Atoi(p)
	out, _ := json.Marshal(map[string]int{"port": listening})
	fmt.Println(string(out))
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(*timeout):
	}
}

func send() {
	node := startNode("gosend@localhost", false)
	defer node.Stop()
	route := gen.NetworkRoute{Route: gen.Route{Host: "127.0.0.1", Port: uint16(*port)}}
	if _, err := node.Network().GetNodeWithRoute(gen.Atom(*peer), route); err != nil {
		fail(err)
	}
	to := gen.ProcessID{Name: "recv", Node: gen.Atom(*peer)}
	pid, err := node.Spawn(factorySender, gen.ProcessOptions{}, to)
	if err != nil {
		fail(err)
	}
	oneWay := func(count int) float64 {
		done := make(chan time.Time, 1)
		begin := time.Now()
		if err := node.Send(pid, start{count, done}); err != nil {
			fail(err)
		}
		select {
		case end := <-done:
			return float64(count) / end.Sub(begin).Seconds()
		case <-time.After(*timeout):
			fail(fmt.Errorf("one-way: no result in %s", *timeout))
		}
		return 0
	}
	warm := *n / 10 / *chunk * *chunk
	if warm < *chunk {
		warm = *chunk
	}
	oneWay(warm)
	rate := oneWay(*n)
	runCallsN := func(count int) ([]time.Duration, time.Duration) {
		done := make(chan []time.Duration, 1)
		begin := time.Now()
		if err := node.Send(pid, runCalls{count, done}); err != nil {
			fail(err)
		}
		select {
		case lat := <-done:
			return lat, time.Since(begin)
		case <-time.After(*timeout):
			fail(fmt.Errorf("calls: no result in %s", *timeout))
		}
		return nil, 0
	}
	runCallsN(200)
	lat, total := runCallsN(*calls)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := len(lat) * 99 / 100
	if p99 >= len(lat) {
		p99 = len(lat) - 1
	}
	out, _ := json.Marshal(map[string]float64{
		"one_way":     rate,
		"call_p50_us": float64(lat[len(lat)/2].Nanoseconds()) / 1e3,
		"call_p99_us": float64(lat[p99].Nanoseconds()) / 1e3,
		"calls_per_s": float64(len(lat)) / total.Seconds(),
	})
	fmt.Println(string(out))
}

func main() {
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if *role == "serve" {
		serve()
	} else {
		send()
	}
}
