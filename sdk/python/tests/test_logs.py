"""LogWriter files and read_log's since/tail/limit/follow handling."""

import threading
import time

from vkhost_sdk import StreamContext, logs, status, v1

OUT, ERR = v1.LogEntry.STREAM_STDOUT, v1.LogEntry.STREAM_STDERR


def written(tmp_path, lines):
    path = str(tmp_path / "c.log")
    writer = logs.LogWriter(path)
    for i, (stream, line) in enumerate(lines):
        writer.write_line(stream, line, when_ns=(i + 1) * 1_000_000_000)
    writer.close()
    return path


def read(path, **fields):
    request = v1.ContainerLogsRequest(**fields)
    return list(logs.read_log(path, request, StreamContext()))


def test_round_trip_keeps_time_stream_and_newlines(tmp_path):
    path = written(tmp_path, [(OUT, b"one\n"), (ERR, b"two \xff bytes\n"), (OUT, b"no newline")])
    entries = read(path)
    assert [(e.stream, e.line, e.time.seconds) for e in entries] == [
        (OUT, b"one\n", 1), (ERR, b"two \xff bytes\n", 2), (OUT, b"no newline", 3)]


def test_since_then_tail_then_limit(tmp_path):
    path = written(tmp_path, [(OUT, f"line {i}\n".encode()) for i in range(10)])
    assert [e.line for e in read(path, tail_lines=2)] == [b"line 8\n", b"line 9\n"]
    assert len(read(path, since_time=status.timestamp(8))) == 3
    assert [e.line for e in read(path, since_time=status.timestamp(3), tail_lines=1)] == [b"line 9\n"]
    assert b"".join(e.line for e in read(path, limit_bytes=10)) == b"line 0\nlin"
    assert read(path, tail_lines=0) == []


def test_long_lines_are_split(tmp_path):
    path = str(tmp_path / "long.log")
    writer = logs.LogWriter(path)
    writer.write_line(OUT, b"x" * (logs.MAX_LINE_BYTES + 5) + b"\n")
    writer.close()
    assert b"".join(e.line for e in read(path)) == b"x" * (logs.MAX_LINE_BYTES + 5) + b"\n"


def test_missing_file_reads_empty(tmp_path):
    assert read(str(tmp_path / "absent.log")) == []


def test_follow_yields_new_lines_until_finished(tmp_path):
    path = str(tmp_path / "f.log")
    writer = logs.LogWriter(path)
    writer.write_line(OUT, b"first\n")
    finished = threading.Event()

    def produce():
        time.sleep(0.3)
        writer.write_line(OUT, b"second\n")
        writer.close()
        finished.set()

    producer = threading.Thread(target=produce)
    producer.start()
    lines = [e.line for e in logs.read_log(path, v1.ContainerLogsRequest(follow=True),
                                           StreamContext(), finished=finished.is_set)]
    producer.join()
    assert lines == [b"first\n", b"second\n"]


def test_follow_stops_when_cancelled(tmp_path):
    path = written(tmp_path, [(OUT, b"only\n")])
    stream = StreamContext()
    threading.Timer(0.3, stream.cancel).start()
    lines = [e.line for e in logs.read_log(path, v1.ContainerLogsRequest(follow=True), stream,
                                           finished=lambda: False)]
    assert lines == [b"only\n"]


def test_follow_from_an_offset_sees_only_later_lines(tmp_path):
    path = str(tmp_path / "o.log")
    writer = logs.LogWriter(path)
    writer.write_line(OUT, b"before\n")
    offset = logs.end_offset(path)
    writer.write_line(ERR, b"after\n")
    writer.close()
    entries = list(logs.follow_from(path, offset, StreamContext(), finished=lambda: True))
    assert [(e.stream, e.line) for e in entries] == [(ERR, b"after\n")]
    assert logs.end_offset(str(tmp_path / "absent.log")) == 0
