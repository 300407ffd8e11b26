package sdk

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/vkhost/vkhost/sdk/go/providerv1"
)

// maxFrameBytes keeps data frames under the 32 KiB spec.md §6.6 recommends.
const maxFrameBytes = 32 * 1024

// LogWriter is where a provider's ContainerLogs sends log entries. Send and
// Lines may be called from several goroutines; entries go out in call order.
type LogWriter struct {
	mu   sync.Mutex
	send func(*v1.ContainerLogsResponse) error
}

// NewLogWriter returns a LogWriter that delivers each batch to send; the SDK
// makes one per ContainerLogs call, tests and adapters may make their own.
func NewLogWriter(send func(*v1.ContainerLogsResponse) error) *LogWriter {
	return &LogWriter{send: send}
}

// Send delivers entries as one frame. It fails once the host has gone away;
// stop then.
func (w *LogWriter) Send(entries ...*v1.LogEntry) error {
	if len(entries) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.send(&v1.ContainerLogsResponse{Entries: entries})
}

// Line sends one log line written at t on stream. line should include its
// trailing newline (the last line of a log may lack one).
func (w *LogWriter) Line(t time.Time, stream v1.LogEntry_Stream, line []byte) error {
	return w.Send(&v1.LogEntry{Time: timestamppb.New(t), Stream: stream, Line: line})
}

// CopyLines reads r to its end and sends each line (split at '\n', lines
// longer than 32 KiB in pieces) as an entry on stream, stamped with the time
// it was read. It is how a backend that only offers a byte stream of its
// log — a file, a pipe, a virtual-kubelet provider's io.ReadCloser — serves
// ContainerLogs. Returns nil at end-of-file, the send error once the host has
// gone away, or r's error.
func (w *LogWriter) CopyLines(r io.Reader, stream v1.LogEntry_Stream) error {
	reader := bufio.NewReaderSize(r, maxFrameBytes)
	for {
		line, err := reader.ReadSlice('\n')
		if len(line) > 0 {
			if sendErr := w.Line(time.Now(), stream, append([]byte(nil), line...)); sendErr != nil {
				return sendErr
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil
		default:
			return err
		}
	}
}
