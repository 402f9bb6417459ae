// A WebSocket echo server in Go (gorilla/websocket, Debian's golang-github-gorilla-websocket-dev),
// the comparison for weft's /ws/echo: every message back as it came, one goroutine per
// connection. Usage: goecho 127.0.0.1:PORT
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

func main() {
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	http.HandleFunc("/ws/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			t, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(t, m); err != nil {
				return
			}
		}
	})
	log.Fatal(http.ListenAndServe(os.Args[1], nil))
}
