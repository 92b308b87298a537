package testenv

import (
	"bufio"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
)

// SMTP is a mail server for tests: it accepts every message and keeps it. While Stall is
// set it reads a message's data and never answers, as a server does when the sender is
// killed in the middle of a send.
type SMTP struct {
	Addr     string
	mu       sync.Mutex
	messages []*mail.Message
	raw      []string
	stall    bool
	stalled  chan struct{}
}

// StartSMTP starts one on a loopback port, stopped with the test.
func StartSMTP(t testing.TB) *SMTP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTP{Addr: l.Addr().String(), stalled: make(chan struct{}, 16)}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Stall makes the server hold each message's data unanswered (true) or accept it (false).
func (s *SMTP) Stall(on bool) {
	s.mu.Lock()
	s.stall = on
	s.mu.Unlock()
}

// Stalled is told each time a message's data was read and left unanswered.
func (s *SMTP) Stalled() <-chan struct{} { return s.stalled }

// Messages are the messages accepted so far.
func (s *SMTP) Messages() []*mail.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*mail.Message(nil), s.messages...)
}

// Raw are the accepted messages as sent.
func (s *SMTP) Raw() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.raw...)
}

func (s *SMTP) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(line string) { _, _ = c.Write([]byte(line + "\r\n")) }
	say("220 localhost ESMTP test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-localhost")
			say("250-8BITMIME")
			say("250 SMTPUTF8")
		case strings.HasPrefix(cmd, "MAIL"), strings.HasPrefix(cmd, "RCPT"), cmd == "RSET", cmd == "NOOP":
			say("250 OK")
		case cmd == "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			stall := s.stall
			s.mu.Unlock()
			if stall {
				s.stalled <- struct{}{}
				_, _ = r.ReadString('\n') // until the sender goes away
				return
			}
			m, err := mail.ReadMessage(strings.NewReader(b.String()))
			if err != nil {
				say("554 unreadable message")
				continue
			}
			s.mu.Lock()
			s.messages, s.raw = append(s.messages, m), append(s.raw, b.String())
			s.mu.Unlock()
			say("250 OK queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 command not recognised")
		}
	}
}
