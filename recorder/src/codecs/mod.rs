//! Small parsers that read what container headers need (picture size, sample rate,
//! channels) out of codec configuration records and keyframes.

pub mod audio;
pub mod color;
pub mod video;

use bytes::Bytes;
use proto::media::Codec;

use crate::mux::TrackInfo;

/// Fills the size/rate/channels of `track` that its configuration record tells and that
/// are still unknown (source metadata, when given, is applied first and wins).
pub fn describe_from_config(track: &mut TrackInfo) {
    let c = &track.config[..];
    match track.codec {
        Codec::H264 | Codec::H265 | Codec::Av1 => {
            let size = match track.codec {
                Codec::H264 => video::h264_size_from_avcc(c),
                Codec::H265 => video::h265_size_from_hvcc(c),
                _ => video::av1_size(c),
            };
            if let (Some((w, h)), 0, 0) = (size, track.width, track.height) {
                track.width = w;
                track.height = h;
            }
        }
        _ => {
            let rc = match track.codec {
                Codec::Aac => audio::aac_config(c),
                Codec::Opus => audio::opus_head(c)
                    .map(|h| (48000, u16::from(h.channels)))
                    .or(Some((48000, 2))),
                Codec::Flac => audio::flac_streaminfo(c),
                Codec::Ac3 => audio::dac3(c),
                Codec::Eac3 => audio::dec3(c),
                _ => None,
            };
            set_audio(track, rc);
        }
    }
}

fn set_audio(track: &mut TrackInfo, rc: Option<audio::RateChannels>) {
    if let Some((rate, ch)) = rc {
        if track.sample_rate == 0 || track.codec == Codec::Opus {
            track.sample_rate = rate;
        }
        if track.channels == 0 {
            track.channels = ch;
        }
    }
}

/// Learns from a keyframe what the configuration did not tell: VP8/VP9/AV1 picture size,
/// MP3 rate and channels, and a dac3/dec3 payload for AC-3/E-AC-3 sent without one.
/// Returns a replacement configuration when one was derived.
pub fn describe_from_frame(track: &mut TrackInfo, frame: &[u8]) -> Option<Bytes> {
    match track.codec {
        Codec::Vp8 | Codec::Vp9 | Codec::Av1 if track.width == 0 => {
            let size = match track.codec {
                Codec::Vp8 => video::vp8_keyframe_size(frame),
                Codec::Vp9 => video::vp9_keyframe_size(frame),
                _ => video::av1_size(frame),
            };
            if let Some((w, h)) = size {
                track.width = w;
                track.height = h;
            }
            None
        }
        Codec::Mp3 if track.sample_rate == 0 => {
            set_audio(track, audio::mp3_frame(frame));
            None
        }
        Codec::Ac3 if track.config.is_empty() => {
            let cfg = Bytes::copy_from_slice(&audio::dac3_from_frame(frame)?);
            track.config = cfg.clone();
            set_audio(track, audio::dac3(&cfg));
            Some(cfg)
        }
        Codec::Eac3 if track.config.is_empty() => {
            let cfg = Bytes::copy_from_slice(&audio::dec3_from_frame(frame)?);
            track.config = cfg.clone();
            set_audio(track, audio::dec3(&cfg));
            Some(cfg)
        }
        _ => None,
    }
}
