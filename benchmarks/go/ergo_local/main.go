// ergo_local is Ergo's side of benchmarks/local_messaging.py, measured the way that
// script measures ergopy, on one core (GOMAXPROCS=1):
//
//   - one-way: a sender process sends N messages to a receiver process in chunks of
//     -chunk, sending itself one message to continue after each chunk; the receiver
//     counts and reports the time of the N-th message;
//   - ping-pong: two processes bounce one message M times (M round trips).
//
// Each measurement runs -repeat times and the best is kept. It prints one JSON line:
// {"one_way": msgs/s, "ping_pong": round trips/s, "n": N, "m": M}.
//
// It needs ergo.services/ergo from the Go module proxy (see go.mod);
// benchmarks/go/build.py says so when the proxy refuses it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"ergo.services/ergo"
	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
)

type next struct{} // the sender's "send the next chunk" message to itself

type receiver struct {
	act.Actor
	n     int
	count int
	done  chan time.Time
}

func factoryReceiver() gen.ProcessBehavior { return &receiver{} }

func (r *receiver) Init(args ...any) error {
	r.n = args[0].(int)
	r.done = args[1].(chan time.Time)
	return nil
}

func (r *receiver) HandleMessage(from gen.PID, message any) error {
	r.count++
	if r.count == r.n {
		r.done <- time.Now()
	}
	return nil
}

type sender struct {
	act.Actor
	to    gen.PID
	left  int
	chunk int
}

func factorySender() gen.ProcessBehavior { return &sender{} }

func (s *sender) Init(args ...any) error {
	s.to = args[0].(gen.PID)
	s.left = args[1].(int)
	s.chunk = args[2].(int)
	return nil
}

func (s *sender) HandleMessage(from gen.PID, message any) error {
	k := s.chunk
	if s.left < k {
		k = s.left
	}
	s.left -= k
	for i := 0; i < k; i++ {
		if err := s.Send(s.to, i); err != nil {
			return err
		}
	}
	if s.left > 0 {
		return s.Send(s.PID(), next{})
	}
	return nil
}

type pinger struct {
	act.Actor
	peer gen.PID
	left int
	done chan time.Time
}

func factoryPinger() gen.ProcessBehavior { return &pinger{} }

func (p *pinger) Init(args ...any) error {
	p.peer = args[0].(gen.PID)
	p.left = args[1].(int)
	p.done = args[2].(chan time.Time)
	return nil
}

func (p *pinger) HandleMessage(from gen.PID, message any) error {
	if message == "pong" {
		p.left--
		if p.left == 0 {
			p.done <- time.Now()
			return nil
		}
	}
	return p.Send(p.peer, "ping")
}

type ponger struct {
	act.Actor
}

func factoryPonger() gen.ProcessBehavior { return &ponger{} }

func (p *ponger) HandleMessage(from gen.PID, message any) error {
	return p.Send(from, "pong")
}

func startNode(name gen.Atom) gen.Node {
	var options gen.NodeOptions
	options.Network.Mode = gen.NetworkModeDisabled
	options.Log.DefaultLogger.Disable = true // no banner or log on stdout: the driver reads it
	node, err := ergo.StartNode(name, options)
	if err != nil {
		fail(err)
	}
	return node
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ergo_local:", err)
	os.Exit(1)
}

func wait(done chan time.Time, timeout time.Duration) time.Time {
	select {
	case t := <-done:
		return t
	case <-time.After(timeout):
		fail(fmt.Errorf("no result in %s", timeout))
	}
	return time.Time{}
}

func oneWay(n, chunk int, timeout time.Duration) float64 {
	node := startNode("ergo_local_oneway@localhost")
	defer node.Stop()
	done := make(chan time.Time, 1)
	recv, err := node.Spawn(factoryReceiver, gen.ProcessOptions{}, n, done)
	if err != nil {
		fail(err)
	}
	send, err := node.Spawn(factorySender, gen.ProcessOptions{}, recv, n, chunk)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := node.Send(send, next{}); err != nil {
		fail(err)
	}
	end := wait(done, timeout)
	return float64(n) / end.Sub(start).Seconds()
}

func pingPong(m int, timeout time.Duration) float64 {
	node := startNode("ergo_local_pingpong@localhost")
	defer node.Stop()
	done := make(chan time.Time, 1)
	pong, err := node.Spawn(factoryPonger, gen.ProcessOptions{})
	if err != nil {
		fail(err)
	}
	ping, err := node.Spawn(factoryPinger, gen.ProcessOptions{}, pong, m, done)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	if err := node.Send(ping, "go"); err != nil {
		fail(err)
	}
	end := wait(done, timeout)
	return float64(m) / end.Sub(start).Seconds()
}

func main() {
	n := flag.Int("n", 2_000_000, "one-way messages")
	m := flag.Int("m", 500_000, "ping-pong round trips")
	chunk := flag.Int("chunk", 1000, "messages per sender batch")
	repeat := flag.Int("repeat", 3, "runs per measurement, best kept")
	timeout := flag.Duration("timeout", 120*time.Second, "time allowed per measurement")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	best := map[string]float64{"one_way": 0, "ping_pong": 0}
	for i := 0; i < *repeat; i++ {
		if r := oneWay(*n, *chunk, *timeout); r > best["one_way"] {
			best["one_way"] = r
		}
		if r := pingPong(*m, *timeout); r > best["ping_pong"] {
			best["ping_pong"] = r
		}
	}
	out, _ := json.Marshal(map[string]any{
		"one_way": best["one_way"], "ping_pong": best["ping_pong"], "n": *n, "m": *m,
		"go": runtime.Version(), "gomaxprocs": runtime.GOMAXPROCS(0),
	})
	fmt.Println(string(out))
}
