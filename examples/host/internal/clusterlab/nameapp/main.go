// Command nameapp is the cluster lab's application: it listens on
// -listen and answers every connection with a minimal HTTP response
// whose body is -name (the node it runs on) and, for GET /pid, its pid.
// It starts in a few milliseconds, so that a failover measurement is
// the cluster's and not an application's start-up. It exits on SIGTERM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "", "`address` to listen on (ip:port)")
	name := flag.String("name", "", "`name` to answer with")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nameapp:", err)
		os.Exit(1)
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		_ = ln.Close()
	}()
	pid := fmt.Sprint(os.Getpid())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			body := *name
			if strings.HasPrefix(line, "GET /pid ") {
				body = pid
			}
			fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n", len(body)+1, body)
		}()
	}
}
