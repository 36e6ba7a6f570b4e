//! The response body of every route: a whole buffer, or an endless FLV stream read from
//! a stream's ring. Its frames are up to three shared buffers sent with one vectored
//! write (a tag header, the shared payload, the tag's back-pointer), so media is never
//! copied into a per-player buffer.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::body::{Frame, SizeHint};

use super::flv::FlvBody;

/// Up to three buffers that go out as one body frame.
#[derive(Debug, Default)]
pub struct Segments {
    parts: [Bytes; 3],
    at: usize,
}

impl Segments {
    /// One buffer.
    pub fn one(b: Bytes) -> Segments {
        Segments::three(b, Bytes::new(), Bytes::new())
    }

    /// Three buffers, in order.
    pub fn three(a: Bytes, b: Bytes, c: Bytes) -> Segments {
        let mut s = Segments {
            parts: [a, b, c],
            at: 0,
        };
        s.skip_empty();
        s
    }

    fn skip_empty(&mut self) {
        while self.at < 3 && self.parts[self.at].is_empty() {
            self.at += 1;
        }
    }
}

impl Buf for Segments {
    fn remaining(&self) -> usize {
        self.parts[self.at.min(3)..].iter().map(Bytes::len).sum()
    }

    fn chunk(&self) -> &[u8] {
        self.parts.get(self.at).map_or(&[], |b| &b[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 && self.at < 3 {
            let part = &mut self.parts[self.at];
            let n = cnt.min(part.len());
            part.advance(n);
            cnt -= n;
            self.skip_empty();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for part in self.parts[self.at.min(3)..]
            .iter()
            .filter(|p| !p.is_empty())
        {
            if n == dst.len() {
                break;
            }
            dst[n] = std::io::IoSlice::new(part);
            n += 1;
        }
        n
    }
}

/// A response body.
pub enum Body {
    /// A complete buffer (sent once), or nothing.
    Full(Option<Bytes>),
    /// A live FLV stream.
    Flv(Box<FlvBody>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Body {
        Body::Full(None)
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body::Full(Some(b))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Full(Some(Bytes::from(s)))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Full(Some(Bytes::from_static(s.as_bytes())))
    }
}

impl hyper::body::Body for Body {
    type Data = Segments;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Segments>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(Segments::one(b))))),
            Body::Flv(f) => f.poll_segments(cx).map(|s| s.map(|s| Ok(Frame::data(s)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Flv(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_advance_across_parts() {
        let mut s = Segments::three(
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
        );
        assert_eq!(s.remaining(), 5);
        let mut iov = [std::io::IoSlice::new(&[]); 4];
        assert_eq!(s.chunks_vectored(&mut iov), 2);
        s.advance(1);
        assert_eq!(s.chunk(), b"b");
        s.advance(2);
        assert_eq!(s.chunk(), b"de");
        s.advance(2);
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.chunk(), b"");
    }
}
