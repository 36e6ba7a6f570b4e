//! The response body of every route: a whole buffer, or an endless FLV stream read from
//! a stream's ring. An FLV body frame is one tag: its header bytes and back-pointer held
//! inline in the frame, the payload shared with the ring, handed to the socket with one
//! vectored write. Nothing is allocated per tag and media is never copied.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hyper::body::{Frame, SizeHint};

use super::flv::FlvBody;

/// Most header bytes a frame holds inline: a WebSocket frame header (10), an FLV tag
/// header (11) and the longest tag-body header `proto::flv` writes (10), with room.
pub const INLINE_HEAD: usize = 40;
/// Most trailer bytes held inline (the FLV back-pointer).
pub const INLINE_TAIL: usize = 4;

/// One body frame: inline head bytes, a shared body, inline tail bytes, sent in order.
#[derive(Debug, Clone)]
pub struct Segments {
    head: [u8; INLINE_HEAD],
    head_len: u8,
    body: Bytes,
    tail: [u8; INLINE_TAIL],
    tail_len: u8,
    /// Bytes already consumed from the front.
    at: usize,
}

impl Segments {
    /// One shared buffer.
    pub fn one(b: Bytes) -> Segments {
        Segments {
            head: [0; INLINE_HEAD],
            head_len: 0,
            body: b,
            tail: [0; INLINE_TAIL],
            tail_len: 0,
            at: 0,
        }
    }

    /// `head`, then `body`, then `tail`; `None` when `head` or `tail` is longer than what
    /// is held inline.
    pub fn framed(head: &[u8], body: Bytes, tail: &[u8]) -> Option<Segments> {
        if head.len() > INLINE_HEAD || tail.len() > INLINE_TAIL {
            return None;
        }
        let mut s = Segments::one(body);
        s.head[..head.len()].copy_from_slice(head);
        s.head_len = head.len() as u8;
        s.tail[..tail.len()].copy_from_slice(tail);
        s.tail_len = tail.len() as u8;
        Some(s)
    }

    /// The three parts, whole.
    fn parts(&self) -> [&[u8]; 3] {
        [
            &self.head[..usize::from(self.head_len)],
            &self.body,
            &self.tail[..usize::from(self.tail_len)],
        ]
    }

    /// The unconsumed rest of each part.
    fn rest(&self) -> impl Iterator<Item = &[u8]> {
        let mut skip = self.at;
        self.parts().into_iter().filter_map(move |p| {
            let n = skip.min(p.len());
            skip -= n;
            let r = &p[n..];
            (!r.is_empty()).then_some(r)
        })
    }
}

impl Buf for Segments {
    fn remaining(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum::<usize>() - self.at
    }

    fn chunk(&self) -> &[u8] {
        self.rest().next().unwrap_or(&[])
    }

    fn advance(&mut self, cnt: usize) {
        self.at += cnt.min(self.remaining());
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(self.rest()) {
            *slot = std::io::IoSlice::new(part);
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
        fn parts(s: &Segments, max: usize) -> Vec<Vec<u8>> {
            let mut iov = [std::io::IoSlice::new(&[]); 4];
            let n = s.chunks_vectored(&mut iov[..max]);
            iov[..n].iter().map(|p| p.to_vec()).collect()
        }
        let mut s = Segments::framed(b"ab", Bytes::new(), b"cde").unwrap();
        assert_eq!(s.remaining(), 5);
        assert_eq!(parts(&s, 4), [b"ab".to_vec(), b"cde".to_vec()]);
        s.advance(1);
        assert_eq!(s.chunk(), b"b");
        s.advance(2);
        assert_eq!(s.chunk(), b"de");
        s.advance(2);
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.chunk(), b"");
        assert!(parts(&s, 4).is_empty());

        let mut s = Segments::framed(b"h", Bytes::from_static(b"body"), b"t").unwrap();
        assert_eq!(
            parts(&s, 4),
            [b"h".to_vec(), b"body".to_vec(), b"t".to_vec()]
        );
        s.advance(3);
        assert_eq!(parts(&s, 1), [b"dy".to_vec()]);
        assert!(Segments::framed(&[0; INLINE_HEAD + 1], Bytes::new(), b"").is_none());
    }
}
