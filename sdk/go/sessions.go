package sdk

import (
	"io"
	"sync"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// processInput is one Exec or Attach request frame after the first, with
// the two request types folded into one shape.
type processInput struct {
	stdin      []byte
	resize     *v1.TerminalSize
	closeStdin bool
}

func execInput(r *v1.ExecRequest) processInput {
	return processInput{stdin: r.GetStdin(), resize: r.GetResize(), closeStdin: r.GetCloseStdin()}
}

func attachInput(r *v1.AttachRequest) processInput {
	return processInput{stdin: r.GetStdin(), resize: r.GetResize(), closeStdin: r.GetCloseStdin()}
}

// resizeBuffer is how many size changes wait for a slow provider; further
// ones are dropped (a terminal only needs the recent ones).
const resizeBuffer = 16

// processSession implements ProcessSession over an Exec or Attach stream.
// One goroutine (pump) receives frames; the provider reads Stdin from
// another; Stdout/Stderr writes are serialised by mu. close must be called
// when the handler ends, so that a pump blocked on an unread stdin returns.
type processSession struct {
	tty    bool
	stdinR *io.PipeReader
	stdinW *io.PipeWriter
	resize chan *v1.TerminalSize

	mu   sync.Mutex
	send func(*v1.ExecResponse) error
}

func newProcessSession(tty bool, initial *v1.TerminalSize, send func(*v1.ExecResponse) error) *processSession {
	r, w := io.Pipe()
	s := &processSession{tty: tty, stdinR: r, stdinW: w,
		resize: make(chan *v1.TerminalSize, resizeBuffer), send: send}
	if tty && initial != nil && (initial.Width != 0 || initial.Height != 0) {
		s.resize <- initial
	}
	return s
}

// pump feeds frames from recv into the session until recv fails (the host
// closed its side or cancelled), then ends stdin and the resize channel.
func (s *processSession) pump(recv func() (processInput, error)) {
	defer close(s.resize)
	defer s.stdinW.Close()
	for {
		in, err := recv()
		if err != nil {
			return
		}
		switch {
		case in.stdin != nil:
			// Blocks until the provider reads it: back-pressure to the host.
			// Fails (ignored) after close_stdin or once the session closed.
			_, _ = s.stdinW.Write(in.stdin)
		case in.resize != nil:
			select {
			case s.resize <- in.resize:
			default:
			}
		case in.closeStdin:
			s.stdinW.Close()
		}
	}
}

// close unblocks a pump waiting for the provider to read stdin.
func (s *processSession) close() { s.stdinR.CloseWithError(io.ErrClosedPipe) }

func (s *processSession) Stdin() io.Reader                { return s.stdinR }
func (s *processSession) Stdout() io.Writer               { return frameWriter{s, false} }
func (s *processSession) Stderr() io.Writer               { return frameWriter{s, !s.tty} }
func (s *processSession) TTY() bool                       { return s.tty }
func (s *processSession) Resize() <-chan *v1.TerminalSize { return s.resize }

func (s *processSession) sendFrame(frame *v1.ExecResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send(frame)
}

// frameWriter turns writes into stdout or stderr frames.
type frameWriter struct {
	s        *processSession
	toStderr bool
}

func (w frameWriter) Write(p []byte) (int, error) {
	return writeChunks(p, func(chunk []byte) error {
		frame := &v1.ExecResponse{Frame: &v1.ExecResponse_Stdout{Stdout: chunk}}
		if w.toStderr {
			frame.Frame = &v1.ExecResponse_Stderr{Stderr: chunk}
		}
		return w.s.sendFrame(frame)
	})
}

// writeChunks sends a copy of p in frames of at most maxFrameBytes.
func writeChunks(p []byte, send func([]byte) error) (int, error) {
	written := 0
	for written < len(p) {
		n := min(len(p)-written, maxFrameBytes)
		if err := send(append([]byte(nil), p[written:written+n]...)); err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

// portForwardSession implements PortForwardSession over a PortForward
// stream, with the same goroutine structure as processSession.
type portForwardSession struct {
	inR *io.PipeReader
	inW *io.PipeWriter

	mu   sync.Mutex
	send func(*v1.PortForwardResponse) error
}

func newPortForwardSession(send func(*v1.PortForwardResponse) error) *portForwardSession {
	r, w := io.Pipe()
	return &portForwardSession{inR: r, inW: w, send: send}
}

func (s *portForwardSession) pump(recv func() (*v1.PortForwardRequest, error)) {
	defer s.inW.Close()
	for {
		frame, err := recv()
		if err != nil {
			return
		}
		switch {
		case frame.GetData() != nil:
			_, _ = s.inW.Write(frame.GetData())
		case frame.GetCloseWrite():
			s.inW.Close()
		}
	}
}

func (s *portForwardSession) close() { s.inR.CloseWithError(io.ErrClosedPipe) }

func (s *portForwardSession) Read(p []byte) (int, error) { return s.inR.Read(p) }

func (s *portForwardSession) Write(p []byte) (int, error) {
	return writeChunks(p, func(chunk []byte) error {
		return s.sendFrame(&v1.PortForwardResponse{Frame: &v1.PortForwardResponse_Data{Data: chunk}})
	})
}

func (s *portForwardSession) WriteError(message string) error {
	return s.sendFrame(&v1.PortForwardResponse{Frame: &v1.PortForwardResponse_Error{Error: message}})
}

func (s *portForwardSession) sendFrame(frame *v1.PortForwardResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.send(frame)
}
