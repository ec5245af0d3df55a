// loadclient drives a WebSocket echo server for benchmarks/ws_echo.py.
//
// It opens -conns connections, keeps -inflight messages in flight on each and
// answers every batch of echoes it reads with ONE write call (the batch's frames
// in one buffer), so a loaded server, not this client, sets the pace. Frames are
// built once (masked with a fixed key; text or binary, optionally compressed with
// permessage-deflate, no context takeover), so the client spends its time on I/O.
//
// Protocol with the driver, one line each on stdout:
//
//	connected <n>     every connection is upgraded
//	start             the measuring window opens (the driver samples /proc now)
//	end               the window closes (the driver samples /proc again)
//	{json}            the result: msgs, seconds, rate, p50_us, p99_us, cpu, ...
//
// With -idle the connections only connect; "ready" is printed and they are held
// until stdin gives a line or closes, or -hold seconds pass. Every run is bounded:
// dialing has a deadline, the load stops after -warmup + -duration, and the whole
// program exits after -deadline seconds whatever happens.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	url      string
	conns    int
	inflight int
	size     int
	binary   bool
	deflate  bool
	warmup   time.Duration
	duration time.Duration
	idle     bool
	hold     time.Duration
	dial     int
	deadline time.Duration
	src      string
}

// latency histogram: 1 µs buckets below 10 ms, 100 µs buckets up to 10 s
const (
	fineBuckets   = 10_000
	coarseBuckets = 100_000
)

var (
	hist      [fineBuckets + coarseBuckets + 1]uint64
	measuring atomic.Bool
	stopping  atomic.Bool
	received  atomic.Uint64
	compRecv  atomic.Uint64
	wrongLen  atomic.Uint64 // uncompressed echoes whose length is not the payload's
	expectLen int
)

func record(d time.Duration) {
	us := d.Microseconds()
	var i int64
	if us < fineBuckets {
		i = us
	} else {
		i = fineBuckets + (us-fineBuckets)/100
		if i > fineBuckets+coarseBuckets {
			i = fineBuckets + coarseBuckets
		}
	}
	atomic.AddUint64(&hist[i], 1)
}

func bucketUS(i int) float64 {
	if i < fineBuckets {
		return float64(i) + 0.5
	}
	return float64(fineBuckets+(i-fineBuckets)*100) + 50
}

func percentile(q float64) float64 {
	var total uint64
	for i := range hist {
		total += atomic.LoadUint64(&hist[i])
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	if want >= total {
		want = total - 1
	}
	var acc uint64
	for i := range hist {
		acc += atomic.LoadUint64(&hist[i])
		if acc > want {
			return bucketUS(i)
		}
	}
	return 0
}

// frame builds one masked client frame carrying payload.
func frame(payload []byte, opcode byte, rsv1 bool) []byte {
	var b bytes.Buffer
	first := 0x80 | opcode
	if rsv1 {
		first |= 0x40
	}
	b.WriteByte(first)
	n := len(payload)
	switch {
	case n < 126:
		b.WriteByte(0x80 | byte(n))
	case n < 65536:
		b.WriteByte(0x80 | 126)
		_ = binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(0x80 | 127)
		_ = binary.Write(&b, binary.BigEndian, uint64(n))
	}
	mask := make([]byte, 4)
	_, _ = rand.Read(mask)
	b.Write(mask)
	for i, c := range payload {
		b.WriteByte(c ^ mask[i%4])
	}
	return b.Bytes()
}

// deflateMessage compresses payload as permessage-deflate sends it with no context
// takeover: a raw deflate stream, sync-flushed, without the trailing 00 00 ff ff.
func deflateMessage(payload []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed)
	_, _ = w.Write(payload)
	_ = w.Flush()
	out := b.Bytes()
	return bytes.TrimSuffix(out, []byte{0, 0, 0xff, 0xff})
}

func handshake(c net.Conn, u *url.URL, deflate bool) (*bufio.Reader, error) {
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	var req strings.Builder
	path := u.RequestURI()
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, u.Host)
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", b64(key))
	if deflate {
		req.WriteString("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n")
	}
	req.WriteString("\r\n")
	if _, err := c.Write([]byte(req.String())); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(c, 512)
	status, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return nil, fmt.Errorf("upgrade refused: %q", strings.TrimSpace(status))
	}
	negotiated := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "\r\n" {
			break
		}
		if strings.HasPrefix(strings.ToLower(line), "sec-websocket-extensions:") && strings.Contains(line, "permessage-deflate") {
			negotiated = true
		}
	}
	if deflate && !negotiated {
		return nil, errors.New("the server did not accept permessage-deflate")
	}
	return r, nil
}

func b64(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var s strings.Builder
	for i := 0; i < len(b); i += 3 {
		var v uint32
		n := len(b) - i
		if n > 3 {
			n = 3
		}
		for j := 0; j < 3; j++ {
			v <<= 8
			if j < n {
				v |= uint32(b[i+j])
			}
		}
		for j := 0; j < 4; j++ {
			if j <= n {
				s.WriteByte(enc[(v>>(18-6*j))&0x3f])
			} else {
				s.WriteByte('=')
			}
		}
	}
	return s.String()
}

type conn struct {
	c     net.Conn
	r     *bufio.Reader
	sent  []time.Time // send times of the frames in flight, oldest first (a ring)
	head  int
	count int
}

// run keeps k frames in flight: it reads whatever echoes are buffered, then
// writes as many frames as it read, in one call.
func (cn *conn) run(batch []byte, frameLen, k int, wg *sync.WaitGroup) {
	defer wg.Done()
	now := time.Now()
	for i := 0; i < k; i++ {
		cn.push(now)
	}
	if _, err := cn.c.Write(batch[:k*frameLen]); err != nil {
		return
	}
	r := cn.r
	for {
		n, err := cn.readFrames(r)
		if err != nil {
			return
		}
		if n == 0 {
			continue
		}
		now := time.Now()
		m := measuring.Load()
		for i := 0; i < n; i++ {
			t := cn.pop()
			if m {
				record(now.Sub(t))
			}
		}
		if m {
			received.Add(uint64(n))
		}
		if stopping.Load() {
			return
		}
		for i := 0; i < n; i++ {
			cn.push(now)
		}
		if _, err := cn.c.Write(batch[:n*frameLen]); err != nil {
			return
		}
	}
}

func (cn *conn) push(t time.Time) {
	cn.sent[(cn.head+cn.count)%len(cn.sent)] = t
	cn.count++
}

func (cn *conn) pop() time.Time {
	if cn.count == 0 {
		return time.Now()
	}
	t := cn.sent[cn.head]
	cn.head = (cn.head + 1) % len(cn.sent)
	cn.count--
	return t
}

// readFrames blocks for one frame, then takes every further frame already buffered.
// It returns how many data frames (text, binary) it consumed.
func (cn *conn) readFrames(r *bufio.Reader) (int, error) {
	n := 0
	for {
		if n > 0 && r.Buffered() < 2 {
			return n, nil
		}
		hdr, err := r.Peek(2)
		if err != nil {
			return n, err
		}
		ln := int(hdr[1] & 0x7f)
		hlen := 2
		switch ln {
		case 126:
			hlen = 4
		case 127:
			hlen = 10
		}
		if n > 0 && r.Buffered() < hlen {
			return n, nil
		}
		h, err := r.Peek(hlen)
		if err != nil {
			return n, err
		}
		switch ln {
		case 126:
			ln = int(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			ln = int(binary.BigEndian.Uint64(h[2:10]))
		}
		if n > 0 && r.Buffered() < hlen+ln {
			return n, nil
		}
		op := h[0] & 0x0f
		rsv1 := h[0]&0x40 != 0
		if _, err := r.Discard(hlen + ln); err != nil {
			return n, err
		}
		switch op {
		case 1, 2:
			n++
			if rsv1 {
				compRecv.Add(1)
			} else if ln != expectLen {
				wrongLen.Add(1)
			}
		case 8:
			return n, io.EOF
		}
	}
}

func dialAll(o options, u *url.URL) ([]*conn, error) {
	conns := make([]*conn, o.conns)
	sem := make(chan struct{}, o.dial)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if o.src != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.src)}
	}
	for i := range conns {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			c, err := dialer.Dial("tcp", u.Host)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				var r *bufio.Reader
				r, err = handshake(c, u, o.deflate)
				_ = c.SetDeadline(time.Time{})
				if err == nil {
					cn := &conn{c: c}
					if !o.idle {
						// keep what the handshake read past the 101, then a reader big enough for a batch
						rest, _ := r.Peek(r.Buffered())
						size := 2 * o.inflight * (o.size + 14)
						if size < 16384 {
							size = 16384
						}
						cn.r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(append([]byte(nil), rest...)), c), size)
						cn.sent = make([]time.Time, o.inflight)
					}
					conns[i] = cn
					return
				}
				c.Close()
			}
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}(i)
		if firstErr != nil {
			break
		}
	}
	wg.Wait()
	if firstErr != nil {
		for _, cn := range conns {
			if cn != nil {
				cn.c.Close()
			}
		}
		return nil, firstErr
	}
	return conns, nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	var o options
	var warmup, duration, hold, deadline float64
	flag.StringVar(&o.url, "url", "ws://127.0.0.1:8080/ws", "server URL")
	flag.IntVar(&o.conns, "conns", 50, "connections")
	flag.IntVar(&o.inflight, "inflight", 16, "messages in flight per connection")
	flag.IntVar(&o.size, "size", 64, "payload bytes")
	flag.BoolVar(&o.binary, "binary", false, "binary frames (default text)")
	flag.BoolVar(&o.deflate, "deflate", false, "offer permessage-deflate and send compressed frames")
	flag.Float64Var(&warmup, "warmup", 0.5, "seconds of load before the window opens")
	flag.Float64Var(&duration, "duration", 2, "seconds of the measuring window")
	flag.BoolVar(&o.idle, "idle", false, "only connect, print ready, hold until stdin gives a line")
	flag.Float64Var(&hold, "hold", 120, "with -idle: the longest hold, seconds")
	flag.IntVar(&o.dial, "dial", 200, "connections dialed at once")
	flag.Float64Var(&deadline, "deadline", 300, "the program exits after this many seconds whatever happens")
	flag.StringVar(&o.src, "src", "", "local IP to dial from, e.g. 127.0.0.2 (each has its own ephemeral ports)")
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	if o.src != "" && net.ParseIP(o.src) == nil {
		fmt.Fprintln(os.Stderr, "loadclient: -src must be an IP address")
		os.Exit(2)
	}
	o.warmup = time.Duration(warmup * float64(time.Second))
	o.duration = time.Duration(duration * float64(time.Second))
	o.hold = time.Duration(hold * float64(time.Second))
	o.deadline = time.Duration(deadline * float64(time.Second))
	time.AfterFunc(o.deadline, func() {
		fmt.Fprintln(os.Stderr, "loadclient: deadline reached")
		os.Exit(3)
	})
	if o.conns < 1 || o.inflight < 0 || o.size < 0 || o.dial < 1 {
		fmt.Fprintln(os.Stderr, "loadclient: conns >= 1, inflight >= 0, size >= 0, dial >= 1")
		os.Exit(2)
	}
	if !o.idle && o.inflight < 1 {
		o.inflight = 1
	}
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "ws" {
		fmt.Fprintln(os.Stderr, "loadclient: -url must be ws://host:port/path")
		os.Exit(2)
	}
	t0 := time.Now()
	conns, err := dialAll(o, u)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadclient:", err)
		os.Exit(1)
	}
	fmt.Printf("connected %d %.3f\n", len(conns), time.Since(t0).Seconds())
	if o.idle {
		fmt.Println("ready")
		done := make(chan struct{})
		go func() {
			_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(o.hold):
		}
		for _, cn := range conns {
			cn.c.Close()
		}
		return
	}

	payload := bytes.Repeat([]byte("x"), o.size)
	expectLen = o.size
	opcode := byte(1)
	if o.binary {
		opcode = 2
		_, _ = rand.Read(payload)
	}
	var one []byte
	if o.deflate {
		one = frame(deflateMessage(payload), opcode, true)
	} else {
		one = frame(payload, opcode, false)
	}
	batch := bytes.Repeat(one, o.inflight)

	var wg sync.WaitGroup
	for _, cn := range conns {
		wg.Add(1)
		go cn.run(batch, len(one), o.inflight, &wg)
	}
	time.Sleep(o.warmup) // the warm-up before the window: a benchmark's schedule, not synchronisation
	c0 := cpuSeconds()
	start := time.Now()
	measuring.Store(true)
	fmt.Println("start")
	time.Sleep(o.duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	c1 := cpuSeconds()
	fmt.Println("end")
	n := received.Load()
	stopping.Store(true)
	for _, cn := range conns {
		cn.c.Close()
	}
	wg.Wait()
	res := map[string]any{
		"conns":        o.conns,
		"inflight":     o.inflight,
		"size":         o.size,
		"binary":       o.binary,
		"deflate":      o.deflate,
		"msgs":         n,
		"seconds":      elapsed.Seconds(),
		"rate":         float64(n) / elapsed.Seconds(),
		"p50_us":       percentile(0.50),
		"p99_us":       percentile(0.99),
		"cpu":          (c1 - c0) / elapsed.Seconds(),
		"compressed":   compRecv.Load(),
		"wrong_length": wrongLen.Load(),
		"frame_bytes":  len(one),
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
