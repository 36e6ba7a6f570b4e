//! RTMP media messages to framed-format messages: FLV tag bodies parsed by this module's
//! parent, 32-bit RTMP timestamps unwrapped into one 64-bit stream clock. Used by every
//! process that turns RTMP into hub frames (ingest-rtmp's publishers, the relayer's pulls).

use bytes::Bytes;

use super::{parse_audio, parse_video, FlvError, MediaPacket};
use crate::ipc::Header;
use crate::media::{Codec, FrameFlags};
use crate::rtmp::session::{Media, MediaKind};

/// Unwraps RTMP's 32-bit millisecond timestamps: each new timestamp is taken as the
/// nearest one (forward or back, within 2^31 ms) to the previous, so wraparound and the
/// small backward steps of interleaved audio and video both come out right.
#[derive(Debug, Default)]
pub struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    /// The 64-bit time of the RTMP timestamp `ts`.
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some((raw, ext)) => ext + i64::from(ts.wrapping_sub(raw) as i32),
        };
        self.last = Some((ts, ext));
        ext
    }
}

/// Per-publisher conversion state; buffers are reused so steady state allocates nothing.
#[derive(Debug)]
pub struct Converter {
    stream: u32,
    packets: Vec<MediaPacket>,
    /// The codec last announced with a TrackConfig, per (is video, track).
    announced: Vec<(bool, u8, Codec)>,
    clock: Clock,
}

impl Default for Converter {
    /// A converter for stream handle 1 (one stream per hub connection).
    fn default() -> Self {
        Converter::new(1)
    }
}

impl Converter {
    /// A converter whose messages carry the stream handle `stream`.
    pub fn new(stream: u32) -> Converter {
        Converter {
            stream,
            packets: Vec::new(),
            announced: Vec::new(),
            clock: Clock::default(),
        }
    }

    /// Converts a data message other than `onMetaData` (its AMF0 values, handler name
    /// first) at RTMP time `timestamp`, in order with the media around it.
    pub fn data(&mut self, timestamp: u32, data: Bytes, mut emit: impl FnMut(Header, Bytes)) {
        let dts = self.clock.unwrap(timestamp);
        emit(
            Header::Data {
                stream: self.stream,
                dts,
            },
            data,
        );
    }

    /// Converts one audio or video message, handing each resulting message to `emit`.
    /// A malformed tag body is an error for that message only.
    pub fn media(
        &mut self,
        m: &Media,
        mut emit: impl FnMut(Header, Bytes),
    ) -> Result<(), FlvError> {
        let video = m.kind == MediaKind::Video;
        self.packets.clear();
        if video {
            parse_video(&m.payload, &mut self.packets)?;
        } else {
            parse_audio(&m.payload, &mut self.packets)?;
        }
        if self.packets.is_empty() {
            return Ok(());
        }
        let dts = self.clock.unwrap(m.timestamp);
        for p in self.packets.drain(..) {
            match p {
                MediaPacket::Config {
                    track,
                    codec,
                    config,
                } => {
                    set_announced(&mut self.announced, video, track, codec);
                    emit(
                        Header::TrackConfig {
                            stream: self.stream,
                            track,
                            codec,
                        },
                        config,
                    );
                }
                MediaPacket::Frame {
                    track,
                    codec,
                    cts,
                    keyframe,
                    disposable,
                    data,
                } => {
                    // Codecs without a configuration record (MP3, legacy FLV codecs) get
                    // an empty one before their first frame and whenever they change.
                    let known = self
                        .announced
                        .iter()
                        .any(|&(v, t, c)| v == video && t == track && c == codec);
                    if !known {
                        set_announced(&mut self.announced, video, track, codec);
                        emit(
                            Header::TrackConfig {
                                stream: self.stream,
                                track,
                                codec,
                            },
                            Bytes::new(),
                        );
                    }
                    let flags = FrameFlags::new(keyframe, disposable);
                    emit(
                        Header::Frame {
                            stream: self.stream,
                            track,
                            video,
                            dts,
                            cts,
                            flags,
                        },
                        data,
                    );
                }
                MediaPacket::EndOfSequence { track, codec } => emit(
                    Header::EndOfSequence {
                        stream: self.stream,
                        track,
                        codec,
                        dts,
                    },
                    Bytes::new(),
                ),
                MediaPacket::VideoMetadata { track, codec, data } => emit(
                    Header::TrackMetadata {
                        stream: self.stream,
                        track,
                        codec,
                        dts,
                    },
                    data,
                ),
                MediaPacket::ChannelConfig {
                    track,
                    codec,
                    config,
                } => emit(
                    Header::ChannelConfig {
                        stream: self.stream,
                        track,
                        codec,
                    },
                    config,
                ),
                MediaPacket::TimestampOffset { track, nanos, .. } => emit(
                    Header::TimestampOffset {
                        stream: self.stream,
                        track,
                        video,
                        nanos,
                    },
                    Bytes::new(),
                ),
            }
        }
        Ok(())
    }
}

fn set_announced(list: &mut Vec<(bool, u8, Codec)>, video: bool, track: u8, codec: Codec) {
    match list.iter_mut().find(|(v, t, _)| *v == video && *t == track) {
        Some(entry) => entry.2 = codec,
        // Track ids are a u8, so this list stays small.
        None => list.push((video, track, codec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::session::MessageStreamId;

    fn media(kind: MediaKind, ts: u32, body: &'static [u8]) -> Media {
        Media {
            stream_id: MessageStreamId(1),
            kind,
            timestamp: ts,
            payload: Bytes::from_static(body),
        }
    }

    fn run(c: &mut Converter, m: &Media) -> Vec<(Header, Bytes)> {
        let mut out = Vec::new();
        c.media(m, |h, p| out.push((h, p))).unwrap();
        out
    }

    #[test]
    fn clock_unwraps() {
        let mut c = Clock::default();
        assert_eq!(c.unwrap(10), 10);
        assert_eq!(c.unwrap(5), 5);
        assert_eq!(c.unwrap(u32::MAX - 1), -2);
        let mut c = Clock::default();
        assert_eq!(c.unwrap(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(c.unwrap(20), (1i64 << 32) + 20);
        assert_eq!(c.unwrap(u32::MAX), (1i64 << 32) - 1);
    }

    #[test]
    fn avc_config_then_frame() {
        let mut c = Converter::default();
        let out = run(
            &mut c,
            &media(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 2, 3]),
        );
        assert_eq!(
            out,
            vec![(
                Header::TrackConfig {
                    stream: 1,
                    track: 0,
                    codec: Codec::H264
                },
                Bytes::from_static(&[1, 2, 3])
            )]
        );
        let out = run(
            &mut c,
            &media(MediaKind::Video, 40, &[0x17, 1, 0, 0, 2, 0, 0, 0, 1, 0x65]),
        );
        assert_eq!(
            out,
            vec![(
                Header::Frame {
                    stream: 1,
                    track: 0,
                    video: true,
                    dts: 40,
                    cts: 2,
                    flags: FrameFlags::KEYFRAME
                },
                Bytes::from_static(&[0, 0, 0, 1, 0x65])
            )]
        );
    }

    #[test]
    fn side_packets_become_their_messages() {
        let mut c = Converter::default();
        run(&mut c, &media(MediaKind::Video, 0, b"\x90hvc1\x01"));
        // ModEx nano offset of 5 ns on an HEVC CodedFramesX at 40 ms.
        let out = run(
            &mut c,
            &media(MediaKind::Video, 40, b"\x97\x02\x00\x00\x05\x03hvc1\xaa"),
        );
        assert_eq!(
            out[0].0,
            Header::TimestampOffset {
                stream: 1,
                track: 0,
                video: true,
                nanos: 5
            }
        );
        assert!(matches!(out[1].0, Header::Frame { dts: 40, .. }));
        let out = run(
            &mut c,
            &media(MediaKind::Video, 41, b"\x94hvc1\x02\x00\x01x"),
        );
        assert_eq!(
            out,
            vec![(
                Header::TrackMetadata {
                    stream: 1,
                    track: 0,
                    codec: Codec::H265,
                    dts: 41
                },
                Bytes::from_static(b"\x02\x00\x01x")
            )]
        );
        let out = run(&mut c, &media(MediaKind::Video, 42, b"\x92hvc1"));
        assert_eq!(
            out[0].0,
            Header::EndOfSequence {
                stream: 1,
                track: 0,
                codec: Codec::H265,
                dts: 42
            }
        );
        let out = run(&mut c, &media(MediaKind::Audio, 43, b"\x94Opus\x00\x02"));
        assert_eq!(
            out,
            vec![(
                Header::ChannelConfig {
                    stream: 1,
                    track: 0,
                    codec: Codec::Opus
                },
                Bytes::from_static(b"\x00\x02")
            )]
        );
        let mut data = Vec::new();
        c.data(44, Bytes::from_static(b"\x02\x00\x01x"), |h, p| {
            data.push((h, p))
        });
        assert_eq!(data[0].0, Header::Data { stream: 1, dts: 44 });
    }

    #[test]
    fn config_less_audio_gets_an_empty_config_on_change() {
        let mut c = Converter::default();
        // MP3 44.1 kHz stereo, then the same, then mono.
        let a = run(&mut c, &media(MediaKind::Audio, 0, &[0x2F, 0xFF, 0xFB]));
        assert_eq!(a.len(), 2);
        assert!(matches!(
            a[0].0,
            Header::TrackConfig {
                codec: Codec::Mp3,
                ..
            }
        ));
        assert!(a[0].1.is_empty());
        assert_eq!(
            run(&mut c, &media(MediaKind::Audio, 26, &[0x2F, 0xFF, 0xFB])).len(),
            1
        );
        let legacy = run(&mut c, &media(MediaKind::Audio, 52, &[0x72, 0x55]));
        assert!(matches!(
            legacy[0].0,
            Header::TrackConfig {
                codec: Codec::LegacyAudio { header: 0x72 },
                ..
            }
        ));
        let changed = run(&mut c, &media(MediaKind::Audio, 60, &[0x73, 0x55]));
        assert_eq!(changed.len(), 2);
    }
}
