//! A bounds-checked cursor over a tag body, and the E-RTMP structures audio and video share:
//! ModEx prefixes and the Multitrack track loop.

use bytes::Bytes;

use super::FlvError;

/// Packet type value that starts a ModEx prefix, in audio and video alike.
pub(super) const MODEX: u8 = 7;
/// ModEx type whose data is a 24-bit nanosecond offset.
const MODEX_TIMESTAMP_OFFSET_NANO: u8 = 0;

const ONE_TRACK: u8 = 0;
const MANY_TRACKS: u8 = 1;
const MANY_TRACKS_MANY_CODECS: u8 = 2;

/// Reads `body[pos..end]`; every read checks the bound and slices payloads from `body`.
#[derive(Debug, Clone)]
pub(super) struct Reader<'a> {
    body: &'a Bytes,
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(body: &'a Bytes) -> Self {
        Reader {
            body,
            pos: 0,
            end: body.len(),
        }
    }

    pub(super) fn remaining(&self) -> usize {
        self.end - self.pos
    }

    fn need(&self, n: usize) -> Result<(), FlvError> {
        if self.remaining() < n {
            return Err(FlvError::Truncated {
                need: n,
                have: self.remaining(),
            });
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FlvError> {
        self.need(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(&self.body[self.pos..self.pos + N]);
        self.pos += N;
        Ok(a)
    }

    pub(super) fn u8(&mut self) -> Result<u8, FlvError> {
        Ok(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, FlvError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(super) fn u24(&mut self) -> Result<u32, FlvError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// A signed 24-bit big-endian value (composition time offsets).
    pub(super) fn si24(&mut self) -> Result<i32, FlvError> {
        let [a, b, c] = self.array()?;
        // Placing the 24 bits at the top and shifting back sign-extends them.
        Ok(i32::from_be_bytes([a, b, c, 0]) >> 8)
    }

    pub(super) fn fourcc(&mut self) -> Result<[u8; 4], FlvError> {
        self.array()
    }

    /// Skips `n` bytes.
    pub(super) fn skip(&mut self, n: usize) -> Result<(), FlvError> {
        self.need(n)?;
        self.pos += n;
        Ok(())
    }

    /// Everything left, sliced.
    pub(super) fn rest(&mut self) -> Bytes {
        let b = self.body.slice(self.pos..self.end);
        self.pos = self.end;
        b
    }

    /// The next `n` bytes (at most what is left), sliced.
    pub(super) fn take(&mut self, n: usize) -> Bytes {
        let end = (self.pos + n).min(self.end);
        let b = self.body.slice(self.pos..end);
        self.pos = end;
        b
    }

    /// Splits off the next `n` bytes as their own reader.
    fn sub(&mut self, n: usize) -> Result<Reader<'a>, FlvError> {
        self.need(n)?;
        let r = Reader {
            body: self.body,
            pos: self.pos,
            end: self.pos + n,
        };
        self.pos += n;
        Ok(r)
    }
}

/// Largest TimestampOffsetNano value (the spec's range ends below one millisecond).
pub(super) const MAX_NANOS: u32 = 999_999;

/// Consumes the ModEx prefixes that follow a packet type of [`MODEX`] and returns the real
/// packet type and the TimestampOffsetNano, if one was present. Every round consumes at
/// least two bytes, so the loop ends with the body.
pub(super) fn read_modex(
    r: &mut Reader<'_>,
    mut packet_type: u8,
) -> Result<(u8, Option<u32>), FlvError> {
    let mut nanos = None;
    while packet_type == MODEX {
        let mut size = usize::from(r.u8()?) + 1;
        if size == 256 {
            size = usize::from(r.u16()?) + 1;
        }
        let mut data = r.sub(size)?;
        let next = r.u8()?;
        let modex_type = next >> 4;
        packet_type = next & 0x0f;
        if modex_type == MODEX_TIMESTAMP_OFFSET_NANO {
            if size < 3 {
                return Err(FlvError::ModExTooShort { len: size });
            }
            nanos = Some(data.u24()?.min(MAX_NANOS));
        }
        // Other ModEx types are not defined yet: skipped, as the spec asks.
    }
    Ok((packet_type, nanos))
}

/// One track of an E-RTMP body: its FourCC, track id and bytes.
pub(super) struct ExTrack<'a> {
    pub(super) fourcc: [u8; 4],
    pub(super) track: u8,
    pub(super) body: Reader<'a>,
}

/// Walks the tracks of an E-RTMP body whose (post-ModEx) packet type is `packet_type`.
/// `multitrack` is the kind's Multitrack packet type. Calls `each` with the per-track packet
/// type and the track.
pub(super) fn for_each_track<'a>(
    mut r: Reader<'a>,
    packet_type: u8,
    multitrack: u8,
    mut each: impl FnMut(u8, ExTrack<'a>) -> Result<(), FlvError>,
) -> Result<(), FlvError> {
    if packet_type != multitrack {
        let fourcc = r.fourcc()?;
        return each(
            packet_type,
            ExTrack {
                fourcc,
                track: 0,
                body: r,
            },
        );
    }
    let b = r.u8()?;
    let kind = b >> 4;
    let packet_type = b & 0x0f;
    if packet_type == multitrack || packet_type == MODEX {
        return Err(FlvError::NestedMultitrack(packet_type));
    }
    if kind > MANY_TRACKS_MANY_CODECS {
        return Err(FlvError::UnknownMultitrackType(kind));
    }
    let shared = if kind == MANY_TRACKS_MANY_CODECS {
        None
    } else {
        Some(r.fourcc()?)
    };
    loop {
        let fourcc = match shared {
            Some(f) => f,
            None => r.fourcc()?,
        };
        let track = r.u8()?;
        let body = if kind == ONE_TRACK {
            let n = r.remaining();
            r.sub(n)?
        } else {
            debug_assert!(kind == MANY_TRACKS || kind == MANY_TRACKS_MANY_CODECS);
            let size = r.u24()? as usize;
            r.sub(size)?
        };
        each(
            packet_type,
            ExTrack {
                fourcc,
                track,
                body,
            },
        )?;
        if r.remaining() == 0 {
            return Ok(());
        }
    }
}
