// WebSocket echo load: N connections, each sending a message and waiting for its echo, over and
// over, for D seconds. Prints messages/s and the round-trip percentiles.
// Usage: wsload ws://127.0.0.1:PORT/ws/echo CONNECTIONS SECONDS MESSAGE_BYTES
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	url := os.Args[1]
	conns, _ := strconv.Atoi(os.Args[2])
	secs, _ := strconv.Atoi(os.Args[3])
	size, _ := strconv.Atoi(os.Args[4])
	msg := make([]byte, size)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	errors := 0
	start := time.Now()
	end := start.Add(time.Duration(secs) * time.Second)
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				mu.Lock()
				errors++
				mu.Unlock()
				return
			}
			defer c.Close()
			local := make([]time.Duration, 0, 100000)
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					break
				}
				_, got, err := c.ReadMessage()
				if err != nil || len(got) != len(msg) {
					mu.Lock()
					errors++
					mu.Unlock()
					break
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(rtts, func(a, b int) bool { return rtts[a] < rtts[b] })
	pct := func(p float64) float64 {
		if len(rtts) == 0 {
			return 0
		}
		return float64(rtts[int(p*float64(len(rtts)-1))].Microseconds())
	}
	fmt.Printf("messages %d errors %d msgs_per_s %.0f p50_us %.0f p99_us %.0f\n", len(rtts), errors,
		float64(len(rtts))/elapsed, pct(0.5), pct(0.99))
}
