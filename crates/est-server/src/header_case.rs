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

impl State {
    /// What to write for `buf`: the bytes (borrowed or fixed) and the next state once `n` of
    /// them are written.
    fn plan<'a>(&self, buf: &'a [u8]) -> (std::borrow::Cow<'a, [u8]>, Plan) {
        use std::borrow::Cow;
        match self {
            State::Off => (Cow::Borrowed(buf), Plan::Keep),
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
                let mut fixed = head.to_vec();
                let mut at = 0;
                while let Some(i) = find(&fixed[at..], FROM) {
                    let i = at + i;
                    fixed[i..i + TO.len()].copy_from_slice(TO);
                    at = i + TO.len();
                }
                (Cow::Owned(fixed.clone()), Plan::Head(fixed, 0))
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
    Off,
    Body(u64),
    /// A head (fixed) of which this much was written before this write.
    Head(Vec<u8>, usize),
}

impl<S: AsyncWrite + Unpin> CanonicalHeaders<S> {
    fn advance(&mut self, plan: Plan, n: usize) {
        self.state = match plan {
            Plan::Keep => self.state.clone(),
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
                    match body_length(&fixed) {
                        Some(0) => State::Head,
                        Some(len) => State::Body(len),
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
        let (bytes, plan) = self.state.plan(buf);
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
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.chunk);
            self.out.extend_from_slice(&buf[..n]);
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
        let mut s = CanonicalHeaders::new(Sink {
            out: Vec::new(),
            chunk,
        });
        for w in writes {
            s.write_all(w).await.unwrap();
        }
        s.inner.out
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
