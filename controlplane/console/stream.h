/* A server-sent-events stream between musterd's loop thread (the writer: it appends events)
 * and one libmicrohttpd connection thread (the reader: it waits for bytes and sends them).
 * Bounded: an event that would take the buffered bytes past cap ends the stream with an
 * "overflow" event (the browser reconnects and replays the job's history), so a stalled
 * client never grows memory. Reference-counted: both sides hold one; the last unref frees. */
#ifndef MU_CONSOLE_STREAM_H
#define MU_CONSOLE_STREAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct mu_console_stream mu_console_stream;

/* A stream buffering at most cap bytes, with one reference; NULL when out of memory. */
mu_console_stream *mu_console_stream_new(size_t cap);
void mu_console_stream_ref(mu_console_stream *s);
void mu_console_stream_unref(mu_console_stream *s);

/* Writer: appends "event: NAME\ndata: DATA\n\n" (data must hold no newline; JSON from
 * jansson's compact dump does not). Returns 0; -1 when the stream is closed (the reader went
 * away or it was closed) or this event overflowed it (it is closed then, with an "overflow"
 * event the reader still gets). */
int mu_console_stream_push(mu_console_stream *s, const char *event, const char *data);
/* Writer: no more events; the reader drains what is buffered and ends. */
void mu_console_stream_close(mu_console_stream *s);
/* Either side: 1 once the reader went away (mu_console_stream_reader_gone). */
int mu_console_stream_reader_is_gone(mu_console_stream *s);
/* Reader: the client disconnected; later pushes fail. */
void mu_console_stream_reader_gone(mu_console_stream *s);

/* Reader: waits up to wait_ms for buffered bytes and copies at most size of them to out.
 * Returns the bytes copied (> 0), 0 when the wait ran out with nothing (send a keep-alive),
 * -1 once the stream is closed and drained. */
long mu_console_stream_read(mu_console_stream *s, char *out, size_t size, int wait_ms);

/* Counters for tests and figures: bytes buffered now, events pushed, 1 when it overflowed. */
size_t mu_console_stream_buffered(mu_console_stream *s);
int mu_console_stream_overflowed(mu_console_stream *s);

#endif
