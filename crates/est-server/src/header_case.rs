//! `WWW-Authenticate` spelled as RFC 9110 spells it on the wire.
//!
//! hyper's `title_case_headers` writes `Content-Type`, `Content-Length`, `Retry-After` and
//! `Content-Transfer-Encoding` as clients expect, but `Www-Authenticate` for
//! `www-authenticate`, and hyper has no public way to choose a header's case on a response.
//! libest's estclient, the most widely deployed EST client, compares header names byte for byte
//! and then finds no challenge at all. So the server's side of each connection goes through
//! [`CanonicalHeaders`], which fixes that one name inside response heads: the same number of
//! bytes, only inside a head, never in a body.
//!
//! The same wrapper gives hyper's own error responses a reason. hyper answers a request it
//! cannot parse (header syntax, Content-Length, Transfer-Encoding, a head over the size limit)
//! by itself, before any handler runs, with an empty `400` or `431`; every other refusal of
//! Estuary's carries a `text/plain` reason, so those heads are replaced by the same response
//! with a reason in the body (issue 12, item 8).
//!
//! It follows the response stream: a head ends at CRLF CRLF; its Content-Length says how many
//! body bytes follow (1xx, 204 and 304 responses have none); then the next head begins. A head
//! it cannot follow (chunked, no Content-Length, a head larger than one write) turns the
//! rewriting off for the rest of the connection: the bytes then pass unchanged, which is what
//! hyper wrote, never anything corrupted.
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The name as hyper writes it, and as it must be written.
const FROM: &[u8] = b"\r\nWww-Authenticate:";
const TO: &[u8] = b"\r\nWWW-Authenticate:";

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The next byte written begins a response head.
    Head,
    /// Part of a fixed head was written; the caller writes the rest of its original bytes,
    /// which are replaced by the rest of `fixed`.
    InHead { fixed: Vec<u8>, written: usize },
    /// This many body bytes follow before the next head.
    Body(u64),
    /// Unable to follow the stream: pass everything through.
    Off,
    /// hyper's own bodiless error response (a request it could not parse) being replaced by
    /// one with a `text/plain` reason: `out` is written in full, then the caller is told that
    /// its `original` bytes were.
    Replacing {
        out: Vec<u8>,
        written: usize,
        original: usize,
    },
}

/// A stream whose writes get `WWW-Authenticate` in canonical case (see the module docs).
#[derive(Debug)]
pub struct CanonicalHeaders<S> {
    inner: S,
    state: State,
}

impl<S> CanonicalHeaders<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            state: State::Head,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The head's own body length: `None` if it cannot be told (then rewriting stops).
fn body_length(head: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?;
    if status.starts_with('1') || status == "204" || status == "304" {
        return Some(0);
    }
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse().ok()?);
        }
    }
    length
}

/// The reason for one of hyper's bodiless error responses, if `head` is one: a 4xx/505 status
/// hyper produces on a parse error, `Connection: close`, `Content-Length: 0` and no
/// `Content-Type` (every response of Estuary's own has one).
fn hyper_error_reason(head: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?;
    let reason = match status {
        "400" => {
            "malformed HTTP request: the request line or a header (its syntax, Content-Length or Transfer-Encoding) could not be parsed\n"
        }
        "413" => "request too large\n",
        "414" => "request URI too long\n",
        "431" => "request header fields too large: the request head exceeds the server's limit\n",
        "501" => "this request method or transfer coding is not implemented\n",
        "505" => "HTTP version not supported: use HTTP/1.1\n",
        _ => return None,
    };
    let (mut close, mut empty) = (false, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            return None;
        }
        close |= name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close");
        empty |= name.eq_ignore_ascii_case("content-length") && value == "0";
    }
    (close && empty).then_some(reason)
}

/// `head` (hyper's, ending CRLF CRLF) with a `text/plain` body saying `reason`.
fn with_reason(head: &[u8], reason: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(head.len() + reason.len() + 64);
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        if line
            .split_once(':')
            .is_some_and(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str(&format!("Content-Length: {}\r\n\r\n", reason.len()));
    out.push_str(reason);
    out.into_bytes()
}

impl State {
    /// What to write for `buf`: the bytes (borrowed or fixed) and the next state once `n` of
    /// them are written.
    fn plan<'a>(&self, buf: &'a [u8]) -> (std::borrow::Cow<'a, [u8]>, Plan) {
        use std::borrow::Cow;
        match self {
            State::Off | State::Replacing { .. } => (Cow::Borrowed(buf), Plan::Keep),
            State::Body(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                (Cow::Borrowed(&buf[..take]), Plan::Body(*left))
            }
            State::InHead { fixed, written } => {
                let rest = &fixed[*written..];
                if buf.len() < rest.len() || !same_but_case(&buf[..rest.len()], rest) {
                    // Not the bytes we expect: stop rewriting (pass through).
                    return (Cow::Borrowed(buf), Plan::Off);
                }
                (
                    Cow::Owned(rest.to_vec()),
                    Plan::Head(fixed.clone(), *written),
                )
            }
            State::Head => {
                let Some(end) = find(buf, b"\r\n\r\n").map(|i| i + 4) else {
                    return (Cow::Borrowed(buf), Plan::Off);
                };
                if !buf.starts_with(b"HTTP/1.") {
                    return (Cow::Borrowed(buf), Plan::Off);
                }
                let head = &buf[..end];
                if let Some(reason) = hyper_error_reason(head) {
                    return (
                        Cow::Borrowed(head),
                        Plan::Replace(with_reason(head, reason)),
                    );
                }
                // The head and as much of its body as this buffer holds go out in one write
                // (one TLS record, one send): hyper hands both over together, and writing the
                // head alone doubled the records and syscalls of every response. The rewrite
                // keeps every byte in place (same lengths), so `n` written still counts
                // hyper's bytes; a next response's head in the same buffer waits for its turn.
                let take = match body_length(head) {
                    Some(len) => end
                        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                        .min(buf.len()),
                    None => buf.len(),
                };
                let mut fixed = head.to_vec();
                let mut at = 0;
                while let Some(i) = find(&fixed[at..], FROM) {
                    let i = at + i;
                    fixed[i..i + TO.len()].copy_from_slice(TO);
                    at = i + TO.len();
                }
                let bytes = if at == 0 {
                    Cow::Borrowed(&buf[..take])
                } else {
                    let mut whole = buf[..take].to_vec();
                    whole[..end].copy_from_slice(&fixed);
                    Cow::Owned(whole)
                };
                (bytes, Plan::Head(fixed, 0))
            }
        }
    }
}

/// `a` equals `b` but for the bytes this module rewrites.
fn same_but_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.eq_ignore_ascii_case(b)
}

enum Plan {
    Keep,
    /// Write this instead of the head (see [`State::Replacing`]).
    Replace(Vec<u8>),
    Off,
    Body(u64),
    /// A head (fixed) of which this much was written before this write.
    Head(Vec<u8>, usize),
}

impl<S: AsyncWrite + Unpin> CanonicalHeaders<S> {
    /// Writes the rest of a replacement; once all of it is out, reports the original head as
    /// written and passes everything after it through (hyper closes such connections).
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let State::Replacing {
                out,
                written,
                original,
            } = &mut self.state
            else {
                return Poll::Ready(Err(io::Error::other("not replacing")));
            };
            if *written >= out.len() {
                let n = *original;
                self.state = State::Off;
                return Poll::Ready(Ok(n));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &out[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn advance(&mut self, plan: Plan, n: usize) {
        self.state = match plan {
            Plan::Keep | Plan::Replace(_) => self.state.clone(),
            Plan::Off => State::Off,
            Plan::Body(left) => {
                let left = left.saturating_sub(n as u64);
                if left == 0 {
                    State::Head
                } else {
                    State::Body(left)
                }
            }
            Plan::Head(fixed, before) => {
                let written = before + n;
                if written < fixed.len() {
                    State::InHead { fixed, written }
                } else {
                    // Body bytes that went out in the same write as the end of the head.
                    let sent = (written - fixed.len()) as u64;
                    match body_length(&fixed) {
                        Some(len) if len <= sent => State::Head,
                        Some(len) => State::Body(len - sent),
                        None => State::Off,
                    }
                }
            }
        };
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CanonicalHeaders<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        if let State::Replacing { .. } = self.state {
            return self.poll_replacement(cx);
        }
        let (bytes, plan) = self.state.plan(buf);
        if let Plan::Replace(out) = plan {
            self.state = State::Replacing {
                out,
                written: 0,
                original: bytes.len(),
            };
            return self.poll_replacement(cx);
        }
        match Pin::new(&mut self.inner).poll_write(cx, &bytes) {
            Poll::Ready(Ok(n)) => {
                self.advance(plan, n);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CanonicalHeaders<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A sink that accepts at most `chunk` bytes per write (short writes, as a full socket
    /// gives).
    struct Sink {
        out: Vec<u8>,
        chunk: usize,
        /// Writes that reached the sink (each is a TLS record and a send on a real socket).
        writes: usize,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.chunk);
            self.out.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn through(writes: &[&[u8]], chunk: usize) -> Vec<u8> {
        through_counting(writes, chunk).await.0
    }

    /// The bytes out and the number of writes that reached the sink.
    async fn through_counting(writes: &[&[u8]], chunk: usize) -> (Vec<u8>, usize) {
        let mut s = CanonicalHeaders::new(Sink {
            out: Vec::new(),
            chunk,
            writes: 0,
        });
        for w in writes {
            s.write_all(w).await.unwrap();
        }
        (s.inner.out, s.inner.writes)
    }

    #[tokio::test]
    async fn a_head_and_its_body_go_out_in_one_write() {
        // Fixed or not, a response hyper hands over whole is one write (one TLS record).
        let fixed = response("401 Unauthorized", BODY);
        let plain =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        for r in [&fixed[..], &plain[..]] {
            let (out, writes) = through_counting(&[r], 4096).await;
            assert_eq!((out.len(), writes), (r.len(), 1));
        }
        // Two responses in one buffer: two writes, the second head fixed too.
        let two = [fixed.clone(), fixed.clone()].concat();
        let (out, writes) = through_counting(&[&two], 4096).await;
        assert_eq!(writes, 2);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("\r\nWWW-Authenticate: ").count(), 4);
    }

    const BODY: &[u8] = b"no \r\nWww-Authenticate: here";

    fn response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nWww-Authenticate: Basic realm=\"e\"\r\nWww-Authenticate: Digest realm=\"e\"\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[tokio::test]
    async fn fixes_heads_only_across_keep_alive_and_short_writes() {
        let one = response("401 Unauthorized", BODY);
        let cont = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        let stream = [cont.clone(), one.clone(), one.clone()].concat();
        for chunk in [1, 3, 7, 64, 4096] {
            // Head and body in one write, and in separate writes.
            for writes in [
                vec![stream.as_slice()],
                vec![&cont[..], &one[..one.len() - BODY.len()], BODY, &one[..]],
            ] {
                let out = through(&writes, chunk).await;
                let text = String::from_utf8(out).unwrap();
                assert_eq!(
                    text.matches("\r\nWWW-Authenticate: ").count(),
                    4,
                    "{chunk}: {text}"
                );
                // The bodies are untouched.
                assert_eq!(
                    text.matches("no \r\nWww-Authenticate: here").count(),
                    2,
                    "{chunk}"
                );
                assert_eq!(text.len(), stream.len());
            }
        }
    }

    #[tokio::test]
    async fn hypers_bodiless_errors_get_a_reason() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\nDate: Wed, 02 Dec 2026 21:51:51 GMT\r\n\r\n";
        for chunk in [1, 5, 4096] {
            let out = String::from_utf8(through(&[bare], chunk).await).unwrap();
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 431 "), "{out}");
            assert!(
                head.contains("\r\nContent-Type: text/plain; charset=utf-8"),
                "{out}"
            );
            assert!(head.contains("\r\nConnection: close"), "{out}");
            assert!(head.contains("\r\nDate: "), "{out}");
            assert!(
                head.contains(&format!("\r\nContent-Length: {}", body.len())),
                "{out}"
            );
            assert!(body.contains("header fields too large"), "{out}");
        }
        // Our own 400s (with a Content-Type) are left alone.
        let ours = response("400 Bad Request", b"bad CSR\n");
        let out = through(&[&ours], 4096).await;
        assert_eq!(out.len(), ours.len());
        assert!(String::from_utf8(out).unwrap().ends_with("bad CSR\n"));
    }

    #[tokio::test]
    async fn what_it_cannot_follow_passes_unchanged() {
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let later = response("401 Unauthorized", b"");
        let out = through(&[chunked, &later], 4096).await;
        assert_eq!(out, [&chunked[..], &later[..]].concat());
        let garbage = b"not http at all \r\nWww-Authenticate: x\r\n\r\n";
        assert_eq!(through(&[garbage], 4096).await, garbage.to_vec());
        assert_eq!(body_length(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(0));
        assert_eq!(
            body_length(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            None
        );
    }
}
